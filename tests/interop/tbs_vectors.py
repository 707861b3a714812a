"""tbs data for the fake guardian, copied from the project's crate-computed vectors (shared/vectors/tbs.json).

Keys of the "tests_recipe_t3_n4" keyset (threshold 3 of 4; its aggregate key is also the only key of
"tests_recipe_t1_n1"), and two notes signed under that aggregate key whose nonces are the secp256k1
points 1·G and 2·G, so their spend keys are the secret keys 1 and 2. Enough for a mint client config
the official client accepts and for e-cash it validates, without a pairing library.
"""

from __future__ import annotations

from dataclasses import dataclass

AGGREGATE_PK = bytes.fromhex(
    "b4eec6475d14432beb586ed74fd2bd021a1100bd414e8fd39a728da0a3ee603e"
    "6aec4e5cc8373e43c021889df1fd8385078ac27c4ee102afb6d4dd81a54364bf"
    "39edcad04e41556674105c2fb97ce203e7cd18a5b16b48f0fa892e2a23f85f37"
)
PEER_PK_SHARES = {
    0: bytes.fromhex(
        "86196b8856a12ae1529dcdf99e2557334661e7e262bd031ad80e7016ae3d5b95"
        "96cc5b23aaeb2c8bf2f8391a513fa0cb0f101b21dbc13f4f1dd1f4ff5837eab8"
        "16bcbc89da30f54ae3a8058ebbaac7ff16062d8c556904d2700484d9853be1f7"
    ),
    1: bytes.fromhex(
        "80033faab3e56eb0daa1140a33480229bac1a0873087a6b33cf8f656fd50ed59"
        "cc1a6382b05820aaa3e16aa1dc634d7519d8a70449a11ec2bc2bba42319ff03d"
        "6206f3528379b9314cac577678770279d1d9efcfaa3600d61db33b560e6a8e75"
    ),
    2: bytes.fromhex(
        "86a1e9e1064c8bb70a610adbdfccd9786b9a4e072da6b48b8191ed2767ae6195"
        "8af92540ee634e7aee4247dbc3b7eb8d12ce1a90f73b39217b4aaf1cb2efc591"
        "08a1708a257ff756bf3d805e61c2dfa557a839975158500628ddd3e27a5399a0"
    ),
    3: bytes.fromhex(
        "8146520d0d9bbe960b974104db8fc2a7a4a990d33d94c0ac4fb649c16e777443"
        "ad5ddf53448a3fddcbd8c0f083055fcd17eeba96eb9374522dd33f803b1fe058"
        "8a85ceb61f9c6cee61725b5b9f26cd02e8683f23e2498f7d2213e6632cff2270"
    ),
}

# Secret key shares (32-byte little-endian scalars) of the same keyset: the fake guardians sign with them.
PEER_SK_SHARES_LE = {
    0: bytes.fromhex("45f71447f5b75783ae525eedcd788e433215e8f23cf1c909d93a1b20bb882e35"),
    1: bytes.fromhex("6d834d4467562fe675b3ec256f546a00865c0b7f21e44d8c85e00078a5b0583a"),
    2: bytes.fromhex("0d29a92e75c2c0995599ad825a9e1ed7c878a65d91b1c86155278eeb9cc31001"),
    3: bytes.fromhex("27e827061dfc0b9e4bbc9d03969e266f051afda19c09aef0d809fecd47103271"),
}
# The 1-of-1 keyset's only secret key (its public key is AGGREGATE_PK).
AGGREGATE_SK_LE = bytes.fromhex("9684ff361ee73971fed200d979af48f4d27adec2ebb0760d98b37a0d31f37f65")


@dataclass(frozen=True)
class SignedNote:
    """A mint note: nonce (the spend key's public key), its unblinded signature, the spend secret."""

    nonce: bytes
    signature: bytes
    spend_secret: bytes


NOTE_1G = SignedNote(
    nonce=bytes.fromhex("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"),
    signature=bytes.fromhex(
        "a4eeb8f4f2dea89dbd3b7fe2da149d264d69be4b262d285afd3dfa79d272269bb666e315c32832576e86cc47209f2605"
    ),
    spend_secret=(1).to_bytes(32, "big"),
)
NOTE_2G = SignedNote(
    nonce=bytes.fromhex("02c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5"),
    signature=bytes.fromhex(
        "8632ee393f0d31d2d6840d6ed6e2a7114c0660c67e8805d20b971fe0cf6209d501c18f9e671ddf3b7401ff7893d30769"
    ),
    spend_secret=(2).to_bytes(32, "big"),
)
