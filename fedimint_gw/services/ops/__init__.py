"""Operating the gateway: metrics, health, limit alerts and the notifications they raise."""
