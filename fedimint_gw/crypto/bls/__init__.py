"""Fedimint's threshold schemes on BLS12-381, over the ``py_arkworks_bls12381`` pairing library.

Modules: ``fields`` and ``curve`` (Fedimint's non-standard "random point" hash to G1/G2 in pure
integer arithmetic), ``chacha`` (the ``rand_chacha`` 0.3 generator and ``Scalar::random``),
``group`` (encodings, Lagrange interpolation, pairing checks), ``tbs`` (mint blind signatures),
``tpe`` (LNv2 threshold point encryption) and ``threshold_crypto`` (LNv1 preimage encryption).
Nothing here does I/O or keeps state; import the submodules directly.
"""
