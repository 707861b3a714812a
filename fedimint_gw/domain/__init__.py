"""Pure domain types: amounts, ids, fees, payment states. No I/O."""
