"""Pure cryptographic primitives on secp256k1 (via coincurve).

Modules: ``scalar`` (group order, scalar arithmetic, hashing), ``point`` (the ``Point`` value
type), ``bdhke`` (Cashu NUT-00 blind signatures), ``dleq`` (NUT-12 and generic DLEQ proofs),
``shamir`` (secret sharing and interpolation in the exponent), ``threshold_bdhke`` and
``threshold_elgamal`` (federation signing and preimage decryption), ``errors``.
``bls/``: Fedimint's BLS12-381 schemes (tbs, tpe, threshold_crypto) over py-arkworks-bls12381,
with Fedimint's own hash to curve (docs/fedimint-crypto.md).
Nothing here does I/O or keeps state; import the submodules directly.
"""
