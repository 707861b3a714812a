"""Tests for our BOLT #11 encoder and decoder: spec vectors, round trips, malformed input."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
from bech32 import CHARSET, bech32_decode, bech32_encode, convertbits
from coincurve import PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from fedimint_gw.domain.amount import MAX_MSAT
from fedimint_gw.lightning.bolt11 import (
    BASIC_MPP,
    CURRENCIES,
    DEFAULT_FEATURES,
    KNOWN_FEATURE_BITS,
    PAYMENT_SECRET,
    VAR_ONION_OPTIN,
    Bolt11Error,
    Invoice,
    InvoiceContent,
    RouteHop,
    TaggedField,
    UnsignedInvoice,
    attach_signature,
    decode,
    encode_for_signinvoice,
    encode_unsigned,
    feature_bits,
    has_feature,
    sign_with_key,
)

# The key every BOLT #11 example is signed with, and its node id.
SPEC_KEY = PrivateKey(bytes.fromhex("e126f68f7eafcc8b74f54d269fe206be715000f94dac067d1c04a8ca3b2db734"))
SPEC_PAYEE = bytes.fromhex("03e7156ae33b0a208d0744199163177e909e80176e55d97a2f221ede0f934dd9ad")
SPEC_HASH = bytes.fromhex("0001020304050607080900010203040506070809000102030405060708090102")
SPEC_SECRET = bytes([0x11]) * 32
SPEC_TIME = 1496314658
CAKE = (
    "One piece of chocolate cake, one icecream cone, one pickle, one slice of swiss cheese, one slice of "
    "salami, one lollypop, one piece of cherry pie, one sausage, one cupcake, and one slice of watermelon"
)
CAKE_HASH = hashlib.sha256(CAKE.encode()).digest()
STORE = (
    'Blockstream Store: 88.85 USD for Blockstream Ledger Nano S x 1, "Back In My Day" Sticker x 2, '
    '"I Got Lightning Working" Sticker x 2 and 1 more items'
)
STORE_HASH = bytes.fromhex("462264ede7e14047e9b249da94fefc47f41f7d02ee9b091815a5506bc8abf75f")
STORE_HOP = RouteHop(
    pubkey=bytes.fromhex("03d06758583bb5154774a6eb221b1276c9e82d65bbaceca806d90e20c108f4b1c7"),
    short_channel_id=(589390 << 40) | (3312 << 16) | 1,
    fee_base_msat=1000,
    fee_proportional_millionths=2500,
    cltv_expiry_delta=40,
)
RUSTY_ROUTE = (
    RouteHop(
        bytes.fromhex("029e03a901b85534ff1e92c43c74431f7ce72046060fcf7a95c37e148f78c77255"),
        0x0102030405060708,
        1,
        20,
        3,
    ),
    RouteHop(
        bytes.fromhex("039e03a901b85534ff1e92c43c74431f7ce72046060fcf7a95c37e148f78c77255"),
        0x030405060708090A,
        2,
        30,
        4,
    ),
)
MODERN = feature_bits(required=[VAR_ONION_OPTIN, PAYMENT_SECRET])

# Valid examples from BOLT #11 (lightning/bolts 11-payment-encoding.md, "Examples"), used as data.
# N*: the current examples (all with a payment secret); L*: the earlier legacy examples.

N1 = (
    "lnbc1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwz"
    "qfqqqsyqcyq5rqwzqfqypqdpl2pkx2ctnv5sxxmmwwd5kgetjypeh2ursdae8g6twvus8g6rfwvs8qun0dfjkxaq9qrsgq357wnc"
    "5r2ueh7ck6q93dj32dlqnls087fxdwk8qakdyafkq3yap9us6v52vjjsrvywa6rt52cm9r9zqt8r2t7mlcwspyetp5h2tztugp9l"
    "fyql"
)

N2 = (
    "lnbc2500u1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygspp5qqqsyqcyq5rqwzqfqqqsyqcyq"
    "5rqwzqfqqqsyqcyq5rqwzqfqypqdq5xysxxatsyp3k7enxv4jsxqzpu9qrsgquk0rl77nj30yxdy8j9vdx85fkpmdla2087ne0xh"
    "8nhedh8w27kyke0lp53ut353s06fv3qfegext0eh0ymjpf39tuven09sam30g4vgpfna3rh"
)

N3 = (
    "lnbc2500u1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygspp5qqqsyqcyq5rqwzqfqqqsyqcyq"
    "5rqwzqfqqqsyqcyq5rqwzqfqypqdpquwpc4curk03c9wlrswe78q4eyqc7d8d0xqzpu9qrsgqhtjpauu9ur7fw2thcl4y9vfvh4m"
    "9wlfyz2gem29g5ghe2aak2pm3ps8fdhtceqsaagty2vph7utlgj48u0ged6a337aewvraedendscp573dxr"
)

N4 = (
    "lnbc20m1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygspp5qqqsyqcyq5rqwzqfqqqsyqcyq5r"
    "qwzqfqqqsyqcyq5rqwzqfqypqhp58yjmdan79s6qqdhdzgynm4zwqd5d7xmw5fk98klysy043l2ahrqs9qrsgq7ea976txfraylv"
    "gzuxs8kgcw23ezlrszfnh8r6qtfpr6cxga50aj6txm9rxrydzd06dfeawfk6swupvz4erwnyutnjq7x39ymw6j38gp7ynn44"
)

N5 = (
    "lntb20m1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygshp58yjmdan79s6qqdhdzgynm4zwqd5"
    "d7xmw5fk98klysy043l2ahrqspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqfpp3x9et2e20v6pu37c5"
    "d9vax37wxq72un989qrsgqdj545axuxtnfemtpwkc45hx9d2ft7x04mt8q7y6t0k2dge9e7h8kpy9p34ytyslj3yu569aalz2xdk"
    "8xkd7ltxqld94u8h2esmsmacgpghe9k8"
)

N6 = (
    "lnbc20m1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygspp5qqqsyqcyq5rqwzqfqqqsyqcyq5r"
    "qwzqfqqqsyqcyq5rqwzqfqypqhp58yjmdan79s6qqdhdzgynm4zwqd5d7xmw5fk98klysy043l2ahrqsfpp3qjmp7lwpagxun9py"
    "gexvgpjdc4jdj85fr9yq20q82gphp2nflc7jtzrcazrra7wwgzxqc8u7754cdlpfrmccae92qgzqvzq2ps8pqqqqqqpqqqqq9qqq"
    "vpeuqafqxu92d8lr6fvg0r5gv0heeeqgcrqlnm6jhphu9y00rrhy4grqszsvpcgpy9qqqqqqgqqqqq7qqzq9qrsgqdfjcdk6w3ak"
    "5pca9hwfwfh63zrrz06wwfya0ydlzpgzxkn5xagsqz7x9j4jwe7yj7vaf2k9lqsdk45kts2fd0fkr28am0u4w95tt2nsq76cqw0"
)

N7 = (
    "lnbc20m1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygshp58yjmdan79s6qqdhdzgynm4zwqd5"
    "d7xmw5fk98klysy043l2ahrqspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqfppj3a24vwu6r8ejrss3"
    "axul8rxldph2q7z99qrsgqz6qsgww34xlatfj6e3sngrwfy3ytkt29d2qttr8qz2mnedfqysuqypgqex4haa2h8fx3wnypranf3p"
    "dwyluftwe680jjcfp438u82xqphf75ym"
)

N8 = (
    "lnbc20m1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygshp58yjmdan79s6qqdhdzgynm4zwqd5"
    "d7xmw5fk98klysy043l2ahrqspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqfppqw508d6qejxtdg4y5"
    "r3zarvary0c5xw7k9qrsgqt29a0wturnys2hhxpner2e3plp6jyj8qx7548zr2z7ptgjjc7hljm98xhjym0dg52sdrvqamxdezkm"
    "qg4gdrvwwnf0kv2jdfnl4xatsqmrnsse"
)

N9 = (
    "lnbc20m1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygshp58yjmdan79s6qqdhdzgynm4zwqd5"
    "d7xmw5fk98klysy043l2ahrqspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqfp4qrp33g0q5c5txsp9a"
    "rysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q9qrsgq9vlvyj8cqvq6ggvpwd53jncp9nwc47xlrsnenq2zp70fq83qlgesn4u3uy"
    "f4tesfkkwwfg3qs54qe426hp3tz7z6sweqdjg05axsrjqp9yrrwc"
)

N10 = (
    "lnbc9678785340p1pwmna7lpp5gc3xfm08u9qy06djf8dfflhugl6p7lgza6dsjxq454gxhj9t7a0sd8dgfkx7cmtwd68yetpd5s"
    "9xar0wfjn5gpc8qhrsdfq24f5ggrxdaezqsnvda3kkum5wfjkzmfqf3jkgem9wgsyuctwdus9xgrcyqcjcgpzgfskx6eqf9hzqnt"
    "eypzxz7fzypfhg6trddjhygrcyqezcgpzfysywmm5ypxxjemgw3hxjmn8yptk7untd9hxwg3q2d6xjcmtv4ezq7pqxgsxzmnyyqc"
    "jqmt0wfjjq6t5v4khxsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygsxqyjw5qcqp2rzjq0gxwkzc8w632"
    "3m55m4jyxcjwmy7stt9hwkwe2qxmy8zpsgg7jcuwz87fcqqeuqqqyqqqqlgqqqqn3qq9q9qrsgqrvgkpnmps664wgkp43l22qsgd"
    "w4ve24aca4nymnxddlnp8vh9v2sdxlu5ywdxefsfvm0fq3sesf08uf6q9a2ke0hc9j6z6wlxg5z5kqpu2v9wz"
)

N11 = (
    "lnbc25m1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5vdhkven9v5sxyetpdeessp5zyg3"
    "zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygs9q5sqqqqqqqqqqqqqqqqsgq2a25dxl5hrntdtn6zvydt7d66hyzs"
    "yhqs4wdynavys42xgl6sgx9c4g7me86a27t07mdtfry458rtjr0v92cnmswpsjscgt2vcse3sgpz3uapa"
)

N12 = (
    "LNBC25M1PVJLUEZPP5QQQSYQCYQ5RQWZQFQQQSYQCYQ5RQWZQFQQQSYQCYQ5RQWZQFQYPQDQ5VDHKVEN9V5SXYETPDEESSP5ZYG3"
    "ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYGS9Q5SQQQQQQQQQQQQQQQQSGQ2A25DXL5HRNTDTN6ZVYDT7D66HYZS"
    "YHQS4WDYNAVYS42XGL6SGX9C4G7ME86A27T07MDTFRY458RTJR0V92CNMSWPSJSCGT2VCSE3SGPZ3UAPA"
)

N13 = (
    "lnbc25m1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5vdhkven9v5sxyetpdeessp5zyg3"
    "zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygs9q5sqqqqqqqqqqqqqqqqsgq2qrqqqfppnqqqqqqqqqqqqqqqqqqq"
    "qqqqqqqqqqqqqppnqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqpp4qqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"
    "qqqqqqqqqqqqqqqqqqqqqqqhpnqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqhp4qqqqqqqqqqqqqqqqqqqq"
    "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqspnqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqsp4qqqqqqqqqq"
    "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqnp5qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqnp"
    "kqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqz599y53s3ujmcfjp5xrdap68qxymkqphwsexhmhr8wdz5"
    "usdzkzrse33chw6dlp3jhuhge9ley7j2ayx36kawe7kmgg8sv5ugdyusdcqzn8z9x"
)

N14 = (
    "lnbc10m1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdp9wpshjmt9de6zqmt9w3skgct5vys"
    "xjmnnd9jx2mq8q8a04uqsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygs9q2gqqqqqqsgq7hf8he7ecf7n"
    "4ffphs6awl9t6676rrclv9ckg3d3ncn7fct63p6s365duk5wrk202cfy3aj5xnnp5gs3vrdvruverwwq7yzhkf5a3xqpd05wjc"
)

L1 = (
    "lnbc1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpl2pkx2ctnv5sxxmmwwd5kgetjypeh2u"
    "rsdae8g6twvus8g6rfwvs8qun0dfjkxaq8rkx3yf5tcsyz3d73gafnh3cax9rn449d9p5uxz9ezhhypd0elx87sjle52x86fux2y"
    "patgddc6k63n7erqz25le42c4u4ecky03ylcqca784w"
)

L2 = (
    "lnbc2500u1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5xysxxatsyp3k7enxv4jsxqzpu"
    "aztrnwngzn3kdzw5hydlzf03qdgm2hdq27cqv3agm2awhz5se903vruatfhq77w3ls4evs3ch9zw97j25emudupq63nyw24cg27h"
    "2rspfj9srp"
)

L3 = (
    "lnbc2500u1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpquwpc4curk03c9wlrswe78q4ey"
    "qc7d8d0xqzpuyk0sg5g70me25alkluzd2x62aysf2pyy8edtjeevuv4p2d5p76r4zkmneet7uvyakky2zr4cusd45tftc9c5fh0n"
    "nqpnl2jfll544esqchsrny"
)

L4 = (
    "lnbc20m1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqhp58yjmdan79s6qqdhdzgynm4zwqd5"
    "d7xmw5fk98klysy043l2ahrqscc6gd6ql3jrc5yzme8v4ntcewwz5cnw92tz0pc8qcuufvq7khhr8wpald05e92xw006sq94mg8v"
    "2ndf4sefvf9sygkshp5zfem29trqq2yxxz7"
)

L5 = (
    "lntb20m1pvjluezhp58yjmdan79s6qqdhdzgynm4zwqd5d7xmw5fk98klysy043l2ahrqspp5qqqsyqcyq5rqwzqfqqqsyqcyq5r"
    "qwzqfqqqsyqcyq5rqwzqfqypqfpp3x9et2e20v6pu37c5d9vax37wxq72un98kmzzhznpurw9sgl2v0nklu2g4d0keph5t7tj9tc"
    "qd8rexnd07ux4uv2cjvcqwaxgj7v4uwn5wmypjd5n69z2xm3xgksg28nwht7f6zspwp3f9t"
)

L6 = (
    "lnbc20m1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqhp58yjmdan79s6qqdhdzgynm4zwqd5"
    "d7xmw5fk98klysy043l2ahrqsfpp3qjmp7lwpagxun9pygexvgpjdc4jdj85fr9yq20q82gphp2nflc7jtzrcazrra7wwgzxqc8u"
    "7754cdlpfrmccae92qgzqvzq2ps8pqqqqqqpqqqqq9qqqvpeuqafqxu92d8lr6fvg0r5gv0heeeqgcrqlnm6jhphu9y00rrhy4gr"
    "qszsvpcgpy9qqqqqqgqqqqq7qqzqj9n4evl6mr5aj9f58zp6fyjzup6ywn3x6sk8akg5v4tgn2q8g4fhx05wf6juaxu9760yp464"
    "54gpg5mtzgerlzezqcqvjnhjh8z3g2qqdhhwkj"
)

L7 = (
    "lnbc20m1pvjluezhp58yjmdan79s6qqdhdzgynm4zwqd5d7xmw5fk98klysy043l2ahrqspp5qqqsyqcyq5rqwzqfqqqsyqcyq5r"
    "qwzqfqqqsyqcyq5rqwzqfqypqfppj3a24vwu6r8ejrss3axul8rxldph2q7z9kmrgvr7xlaqm47apw3d48zm203kzcq357a4ls9a"
    "l2ea73r8jcceyjtya6fu5wzzpe50zrge6ulk4nvjcpxlekvmxl6qcs9j3tz0469gq5g658y"
)

L8 = (
    "lnbc20m1pvjluezhp58yjmdan79s6qqdhdzgynm4zwqd5d7xmw5fk98klysy043l2ahrqspp5qqqsyqcyq5rqwzqfqqqsyqcyq5r"
    "qwzqfqqqsyqcyq5rqwzqfqypqfppqw508d6qejxtdg4y5r3zarvary0c5xw7kepvrhrm9s57hejg0p662ur5j5cr03890fa7k2py"
    "pgttmh4897d3raaq85a293e9jpuqwl0rnfuwzam7yr8e690nd2ypcq9hlkdwdvycqa0qza8"
)

L9 = (
    "lnbc20m1pvjluezhp58yjmdan79s6qqdhdzgynm4zwqd5d7xmw5fk98klysy043l2ahrqspp5qqqsyqcyq5rqwzqfqqqsyqcyq5r"
    "qwzqfqqqsyqcyq5rqwzqfqypqfp4qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q28j0v3rwgy9pvjnd48e"
    "e2pl8xrpxysd5g44td63g6xcjcu003j3qe8878hluqlvl3km8rm92f5stamd3jw763n3hck0ct7p8wwj463cql26ava"
)

L10 = (
    "lnbc9678785340p1pwmna7lpp5gc3xfm08u9qy06djf8dfflhugl6p7lgza6dsjxq454gxhj9t7a0sd8dgfkx7cmtwd68yetpd5s"
    "9xar0wfjn5gpc8qhrsdfq24f5ggrxdaezqsnvda3kkum5wfjkzmfqf3jkgem9wgsyuctwdus9xgrcyqcjcgpzgfskx6eqf9hzqnt"
    "eypzxz7fzypfhg6trddjhygrcyqezcgpzfysywmm5ypxxjemgw3hxjmn8yptk7untd9hxwg3q2d6xjcmtv4ezq7pqxgsxzmnyyqc"
    "jqmt0wfjjq6t5v4khxxqyjw5qcqp2rzjq0gxwkzc8w6323m55m4jyxcjwmy7stt9hwkwe2qxmy8zpsgg7jcuwz87fcqqeuqqqyqq"
    "qqlgqqqqn3qq9qn07ytgrxxzad9hc4xt3mawjjt8znfv8xzscs7007v9gh9j569lencxa8xeujzkxs0uamak9aln6ez02uunw6rd"
    "2ht2sqe4hz8thcdagpleym0j"
)

L11 = (
    "lnbc25m1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5vdhkven9v5sxyetpdeessp5zyg3"
    "zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygs9q5sqqqqqqqqqqqqqqqpqsq67gye39hfg3zd8rgc80k32tvy9xk2"
    "xunwm5lzexnvpx6fd77en8qaq424dxgt56cag2dpt359k3ssyhetktkpqh24jqnjyw6uqd08sgptq44qu"
)

L13 = (
    "lnbc25m1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5vdhkven9v5sxyetpdeessp5zyg3"
    "zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygs9q5sqqqqqqqqqqqqqqqpqsq2qrqqqfppnqqqqqqqqqqqqqqqqqqq"
    "qqqqqqqqqqqqqppnqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqpp4qqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"
    "qqqqqqqqqqqqqqqqqqqqqqqhpnqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqhp4qqqqqqqqqqqqqqqqqqqq"
    "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqspnqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqsp4qqqqqqqqqq"
    "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqnp5qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqnp"
    "kqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq2jxxfsnucm4jf4zwtznpaxphce606fvhvje5x7d4gw7n7"
    "3994hgs7nteqvenq8a4ml8aqtchv5d9pf7l558889hp4yyrqv6a7zpq9fgpskqhza"
)

# Invalid examples from BOLT #11 ("Examples of Invalid Invoices").

BAD_FEATURE100 = (
    "lnbc25m1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5vdhkven9v5sxyetpdeessp5zyg3"
    "zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygs9q4psqqqqqqqqqqqqqqqqsgqtqyx5vggfcsll4wu246hz02kp85x"
    "4katwsk9639we5n5yngc3yhqkm35jnjw4len8vrnqnf5ejh0mzj9n3vz2px97evektfm2l6wqccp3y7372"
)

BAD_CHECKSUM = (
    "lnbc2500u1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpquwpc4curk03c9wlrswe78q4ey"
    "qc7d8d0xqzpuyk0sg5g70me25alkluzd2x62aysf2pyy8edtjeevuv4p2d5p76r4zkmneet7uvyakky2zr4cusd45tftc9c5fh0n"
    "nqpnl2jfll544esqchsrnt"
)

BAD_NO1 = (
    "pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpquwpc4curk03c9wlrswe78q4eyqc7d8d0xqz"
    "puyk0sg5g70me25alkluzd2x62aysf2pyy8edtjeevuv4p2d5p76r4zkmneet7uvyakky2zr4cusd45tftc9c5fh0nnqpnl2jfll"
    "544esqchsrny"
)

BAD_MIXED = (
    "LNBC2500u1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpquwpc4curk03c9wlrswe78q4ey"
    "qc7d8d0xqzpuyk0sg5g70me25alkluzd2x62aysf2pyy8edtjeevuv4p2d5p76r4zkmneet7uvyakky2zr4cusd45tftc9c5fh0n"
    "nqpnl2jfll544esqchsrny"
)

BAD_UNRECOVERABLE = (
    "lnbc2500u1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5xysxxatsyp3k7enxv4jsxqzpu"
    "sp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygs9qrsgqwgt7mcn5yqw3yx0w94pswkpq6j9uh6xfqqqtsk4"
    "tnarugeektd4hg5975x9am52rz4qskukxdmjemg92vvqz8nvmsye63r5ykel43pgz7zq0g2"
)

BAD_UNRECOVERABLE_LEGACY = (
    "lnbc2500u1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5xysxxatsyp3k7enxv4jsxqzpu"
    "axtrnwngzn3kdzw5hydlzf03qdgm2hdq27cqv3agm2awhz5se903vruatfhq77w3ls4evs3ch9zw97j25emudupq63nyw24cg27h"
    "2rspk28uwq"
)

BAD_SHORT = (
    "lnbc1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpl2pkx2ctnv5sxxmmwwd5kgetjypeh2u"
    "rsdae8g6na6hlh"
)

BAD_MULTIPLIER = (
    "lnbc2500x1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5xysxxatsyp3k7enxv4jsxqzpu"
    "sp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygs9qrsgqrrzc4cvfue4zp3hggxp47ag7xnrlr8vgcmkjxk3"
    "j5jqethnumgkpqp23z9jclu3v0a7e0aruz366e9wqdykw6dxhdzcjjhldxq0w6wgqcnu43j"
)

BAD_SUBMSAT = (
    "lnbc2500000001p1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5xysxxatsyp3k7enxv4j"
    "sxqzpusp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygs9qrsgq0lzc236j96a95uv0m3umg28gclm5lqxtq"
    "qwk32uuk4k6673k6n5kfvx3d2h8s295fad45fdhmusm8sjudfhlf6dcsxmfvkeywmjdkxcp99202x"
)


def _split(invstr: str) -> tuple[str, list[int]]:
    """hrp and data words (without checksum), by the bech32 package's own decoder."""
    hrp, words = bech32_decode(invstr)
    assert hrp is not None and words is not None
    return hrp, words


def _sign_words(hrp: str, body: list[int], key: PrivateKey = SPEC_KEY, recid: int | None = None) -> str:
    """An invoice signed by a second, independent route: bech32.convertbits instead of our packing."""
    padded = convertbits(body, 5, 8, True)
    assert padded is not None
    sig = key.sign_recoverable(hashlib.sha256(hrp.encode() + bytes(padded)).digest(), hasher=None)
    if recid is not None:
        sig = sig[:64] + bytes([recid])
    sig_words = convertbits(sig, 8, 5, True)
    assert sig_words is not None
    return str(bech32_encode(hrp, body + sig_words))


def _field(letter: str, payload: bytes | list[int]) -> list[int]:
    words = list(payload) if isinstance(payload, list) else convertbits(payload, 8, 5, True)
    assert words is not None
    return [CHARSET.index(letter), len(words) // 32, len(words) % 32, *words]


def _body(*fields: list[int]) -> list[int]:
    timestamp = [(SPEC_TIME >> (5 * i)) & 31 for i in reversed(range(7))]
    return timestamp + [w for f in fields for w in f]


P_FIELD = _field("p", SPEC_HASH)
D_FIELD = _field("d", b"coffee beans")


def _content(**overrides: object) -> InvoiceContent:
    params: dict[str, object] = {
        "currency": "bcrt",
        "amount_msat": 1000,
        "timestamp": SPEC_TIME,
        "payment_hash": SPEC_HASH,
        "payment_secret": SPEC_SECRET,
        "description": "test",
        "features": DEFAULT_FEATURES,
    }
    params.update(overrides)
    return InvoiceContent(**params)  # type: ignore[arg-type]


# --- spec vectors -------------------------------------------------------------------------------

LEGACY = {"payment_secret": None, "features": 0}
COFFEE = {"amount_msat": 250_000_000, "description": "1 cup coffee", "expiry": 60}
NONSENSE = {"amount_msat": 250_000_000, "description": "ナンセンス 1杯", "expiry": 60}
CAKE_20M = {"amount_msat": 2_000_000_000, "description": None, "description_hash": CAKE_HASH}
BEANS = {"amount_msat": 2_500_000_000, "description": "coffee beans"}
PICO = {
    "timestamp": 1572468703,
    "amount_msat": 967_878_534,
    "payment_hash": STORE_HASH,
    "description": STORE,
    "expiry": 604800,
    "min_final_cltv_expiry": 10,
    "route_hints": ((STORE_HOP,),),
}
IGNORED = ("2", "f", "p", "p", "h", "h", "s", "s", "n", "n")
VALID_VECTORS = [
    ("N1", N1, {"amount_msat": None, "description": "Please consider supporting this project"}),
    ("N2", N2, COFFEE),
    ("N3", N3, NONSENSE),
    ("N4", N4, CAKE_20M),
    ("N5", N5, {**CAKE_20M, "currency": "tb", "extras": ("f",)}),
    ("N6", N6, {**CAKE_20M, "route_hints": (RUSTY_ROUTE,), "extras": ("f",)}),
    ("N7", N7, {**CAKE_20M, "extras": ("f",)}),
    ("N8", N8, {**CAKE_20M, "extras": ("f",)}),
    ("N9", N9, {**CAKE_20M, "extras": ("f",)}),
    ("N10", N10, PICO),
    ("N11", N11, {**BEANS, "features": MODERN | 1 << 99}),
    ("N12", N12, {**BEANS, "features": MODERN | 1 << 99}),
    ("N13", N13, {**BEANS, "features": MODERN | 1 << 99, "extras": IGNORED}),
    ("L1", L1, {**LEGACY, "amount_msat": None, "description": "Please consider supporting this project"}),
    ("L2", L2, {**LEGACY, **COFFEE}),
    ("L3", L3, {**LEGACY, **NONSENSE}),
    ("L4", L4, {**LEGACY, **CAKE_20M}),
    ("L5", L5, {**LEGACY, **CAKE_20M, "currency": "tb", "extras": ("f",)}),
    ("L6", L6, {**LEGACY, **CAKE_20M, "route_hints": (RUSTY_ROUTE,), "extras": ("f",)}),
    ("L7", L7, {**LEGACY, **CAKE_20M, "extras": ("f",)}),
    ("L8", L8, {**LEGACY, **CAKE_20M, "extras": ("f",)}),
    ("L9", L9, {**LEGACY, **CAKE_20M, "extras": ("f",)}),
    ("L10", L10, {**LEGACY, **PICO}),
    ("L11", L11, {**BEANS, "features": feature_bits(optional=[8, 14, 98])}),
    ("L13", L13, {**BEANS, "features": feature_bits(optional=[8, 14, 98]), "extras": IGNORED}),
]


@pytest.mark.parametrize(("name", "invstr", "expected"), VALID_VECTORS, ids=[v[0] for v in VALID_VECTORS])
def test_decodes_spec_vector(name: str, invstr: str, expected: dict[str, object]) -> None:
    inv = decode(invstr)
    want: dict[str, object] = {
        "currency": "bc",
        "timestamp": SPEC_TIME,
        "payment_hash": SPEC_HASH,
        "payment_secret": SPEC_SECRET,
        "description_hash": None,
        "expiry": 3600,
        "min_final_cltv_expiry": 18,
        "features": MODERN,
        "route_hints": (),
        "payee": SPEC_PAYEE,
        **{k: v for k, v in expected.items() if k != "extras"},
    }
    assert {k: getattr(inv, k) for k in want} == want
    assert tuple(f.letter for f in inv.extra_fields) == expected.get("extras", ())


def test_metadata_vector_needs_feature_48_to_be_known() -> None:
    with pytest.raises(Bolt11Error, match=r"unknown compulsory feature bits \[48\]"):
        decode(N14)
    inv = decode(N14, known_features=KNOWN_FEATURE_BITS | {48})
    assert inv.features == MODERN | 1 << 48
    assert inv.description == "payment metadata inside"
    assert [(f.letter, len(f.data)) for f in inv.extra_fields] == [("m", 7)]
    assert inv.payee == SPEC_PAYEE


@pytest.mark.parametrize(
    ("invstr", "message", "digest", "signature"),
    [
        (
            N1,
            "6c6e62630b25fe64500d04444444444444444444444444444444444444444444444444444444444444444021a000081"
            "01820283038404800081018202830384048000810182028303840480810343f506c6561736520636f6e7369646572"
            "20737570706f7274696e6720746869732070726f6a6563740500e08000",
            "6daf4d488be41ce7cbb487cab1ef2975e5efcea879b20d421f0ef86b07cbb987",
            "8d3ce9e28357337f62da0162d9454df827f83cfe499aeb1c1db349d4d81127425e434ca29929406c23bba1ae8ac6ca"
            "32880b38d4bf6ff874024cac34ba9625f101",
        ),
        (
            N6,
            "6c6e626332306d0b25fe64500d04444444444444444444444444444444444444444444444444444444444444444021"
            "a000081018202830384048000810182028303840480008101820283038404808105c343925b6f67e2c340036ed120"
            "93dd44e0368df1b6ea26c53dbe4811f58fd5db8c104843104b61f7dc1ea0dc99424464cc4064dc564d91e891948053"
            "c07520370aa69fe3d258878e8863ef9ce408c0c1f9ef52b86fc291ef18ee4aa020406080a0c0e1000000002000000"
            "280006073c07520370aa69fe3d258878e8863ef9ce408c0c1f9ef52b86fc291ef18ee4aa06080a0c0e10121400000"
            "0040000003c00080500e08000",
            "b342d4655b984e53f405fe4d872fb9b7cf54ba538fcd170ed4a5906a9f535064",
            "6a6586db4e8f6d40e3a5bb92e4df5110c627e9ce493af237e20a046b4e86ea200178c59564ecf892f33a9558bf041b"
            "6ad2cb8292d7a6c351fbb7f2ae2d16b54e00",
        ),
        (
            L1,
            "6c6e62630b25fe64410d00004080c1014181c20240004080c1014181c20240004080c1014181c202404081a1fa8363"
            "2b0b9b29031b7b739b4b232b91039bab83837b93a34b733903a3434b990383937b532b1ba0",
            "c3d4e83f646fa79a393d75277b1d858db1d1f7ab7137dcb7835db2ecd518e1c9",
            "38ec6891345e204145be8a3a99de38e98a39d6a569434e1845c8af7205afcfcc7f425fcd1463e93c32881ead0d6e35"
            "6d467ec8c02553f9aab15e5738b11f127f00",
        ),
    ],
    ids=["N1", "N6", "L1"],
)
def test_signing_data_matches_spec_breakdown(invstr: str, message: str, digest: str, signature: str) -> None:
    hrp, words = _split(invstr)
    unsigned = UnsignedInvoice(hrp, tuple(words[:-104]))
    assert unsigned.signing_message().hex() == message
    assert unsigned.sighash().hex() == digest
    assert decode(invstr).signature.hex() == signature


# Vectors whose fields our encoder writes in the same order (p, d|h, s, x, c, r, 9, extras).
SAME_ORDER = ["N10", "N11", "N12", "N13", "L1", "L2", "L3", "L4", "L10", "L11", "L13"]


@pytest.mark.parametrize("name", SAME_ORDER)
def test_reencodes_spec_vector_byte_exact(name: str) -> None:
    invstr = globals()[name]
    unsigned = encode_unsigned(decode(invstr), include_default_c=False)
    assert sign_with_key(unsigned, SPEC_KEY) == invstr.lower()


def test_encodes_spec_vectors_from_scratch() -> None:
    coffee = InvoiceContent(
        currency="bc",
        amount_msat=250_000_000,
        timestamp=SPEC_TIME,
        payment_hash=SPEC_HASH,
        description="1 cup coffee",
        expiry=60,
    )
    assert sign_with_key(encode_unsigned(coffee, include_default_c=False), SPEC_KEY) == L2
    store = InvoiceContent(
        currency="bc",
        amount_msat=967_878_534,
        timestamp=1572468703,
        payment_hash=STORE_HASH,
        payment_secret=SPEC_SECRET,
        description=STORE,
        expiry=604800,
        min_final_cltv_expiry=10,
        features=MODERN,
        route_hints=((STORE_HOP,),),
    )
    assert sign_with_key(encode_unsigned(store), SPEC_KEY) == N10


def test_other_field_orders_still_decode_to_same_content() -> None:
    # N2 writes s before p; we write p first: same content, different (but valid) string.
    ours = sign_with_key(encode_unsigned(decode(N2), include_default_c=False), SPEC_KEY)
    assert ours != N2
    assert dataclasses.replace(decode(ours), signature=b"\0" * 65) == dataclasses.replace(
        decode(N2), signature=b"\0" * 65
    )


# --- amounts --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("msat", "suffix"),
    [
        (None, ""),
        (1, "10p"),
        (10, "100p"),
        (100, "1n"),
        (1000, "10n"),
        (100_000, "1u"),
        (250_000_000, "2500u"),
        (100_000_000, "1m"),
        (2_000_000_000, "20m"),
        (100_000_000_000, "1"),
        (2_100_000_000_000_000_000, "21000000"),
        (967_878_534, "9678785340p"),
    ],
)
def test_amount_uses_shortest_exact_multiplier(msat: int | None, suffix: str) -> None:
    unsigned = encode_unsigned(_content(currency="bc", amount_msat=msat))
    assert unsigned.hrp == "lnbc" + suffix
    assert decode(sign_with_key(unsigned, SPEC_KEY)).amount_msat == msat


@settings(max_examples=50, deadline=None)
@given(st.integers(1, MAX_MSAT))
def test_amount_representation_is_exact_and_shortest(msat: int) -> None:
    unsigned = encode_unsigned(_content(amount_msat=msat))
    chosen = unsigned.hrp.removeprefix("lnbcrt")
    assert decode(sign_with_key(unsigned, SPEC_KEY)).amount_msat == msat
    pico = msat * 10
    exact = [
        f"{pico // per}{letter}"
        for letter, per in [("", 10**12), ("m", 10**9), ("u", 10**6), ("n", 1000), ("p", 1)]
        if pico % per == 0
    ]
    assert chosen in exact
    assert len(chosen) == min(len(e) for e in exact)
    assert not chosen.endswith("p") or chosen[-2] == "0"


# --- round trips ----------------------------------------------------------------------------------

SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
UNKNOWN_ODD = sum(1 << bit for bit in range(19, 300, 2))
UNPARSED_TAGS = [i for i, c in enumerate(CHARSET) if c not in "psdhnxcr9"]
keys = st.integers(1, SECP256K1_ORDER - 1).map(lambda i: PrivateKey(i.to_bytes(32, "big")))
hashes = st.binary(min_size=32, max_size=32)
hops = st.builds(
    RouteHop,
    pubkey=st.sampled_from([b"\x02", b"\x03"]).flatmap(lambda p: hashes.map(lambda b: p + b)),
    short_channel_id=st.integers(0, 2**64 - 1),
    fee_base_msat=st.integers(0, 2**32 - 1),
    fee_proportional_millionths=st.integers(0, 2**32 - 1),
    cltv_expiry_delta=st.integers(0, 2**16 - 1),
)
extra_fields = st.builds(
    TaggedField, st.sampled_from(UNPARSED_TAGS), st.lists(st.integers(0, 31), max_size=40).map(tuple)
)


@st.composite
def contents(draw: st.DrawFn) -> InvoiceContent:
    base = draw(st.sampled_from([0, DEFAULT_FEATURES, MODERN, feature_bits(optional=[8, 14, 16])]))
    features = base | (draw(st.integers(0, 2**300)) & UNKNOWN_ODD)
    secret = draw(hashes if has_feature(features, PAYMENT_SECRET) else st.none() | hashes)
    hashed = draw(st.booleans())
    return InvoiceContent(
        currency=draw(st.sampled_from(sorted(CURRENCIES))),
        amount_msat=draw(st.none() | st.integers(1, MAX_MSAT)),  # decode refuses more than 21M BTC
        timestamp=draw(st.integers(0, 2**35 - 1)),
        payment_hash=draw(hashes),
        payment_secret=secret,
        description=None if hashed else draw(st.text(st.characters(codec="utf-8"), max_size=150)),
        description_hash=draw(hashes) if hashed else None,
        expiry=draw(st.just(3600) | st.integers(0, 2**64 - 1)),
        min_final_cltv_expiry=draw(st.just(18) | st.integers(0, 2**64 - 1)),
        features=features,
        route_hints=draw(st.lists(st.lists(hops, min_size=1, max_size=3).map(tuple), max_size=3).map(tuple)),
        extra_fields=tuple(draw(st.lists(extra_fields, max_size=2))),
    )


@settings(max_examples=50, deadline=None)
@given(content=contents(), key=keys, with_n=st.booleans(), default_c=st.booleans())
def test_round_trip(content: InvoiceContent, key: PrivateKey, with_n: bool, default_c: bool) -> None:
    payee = key.public_key.format()
    unsigned = encode_unsigned(content, payee_field=payee if with_n else None, include_default_c=default_c)
    invstr = sign_with_key(unsigned, key)
    decoded = decode(invstr)
    fields = {f.name: getattr(content, f.name) for f in dataclasses.fields(InvoiceContent)}
    assert decoded == Invoice(**fields, payee=payee, signature=decoded.signature)
    assert decode(invstr.upper()) == decoded
    # The signature agrees with an independent packing of the signed data (bech32.convertbits).
    hrp, words = _split(invstr)
    assert _sign_words(hrp, words[:-104], key) == invstr
    # Re-encoding the decoded invoice reproduces the exact signed data.
    assert encode_unsigned(decoded, payee_field=unsigned.payee_field, include_default_c=default_c) == unsigned


@settings(max_examples=50, deadline=None)
@given(position=st.integers(0, len(N10) - 1), replacement=st.sampled_from(CHARSET))
def test_any_single_character_change_is_rejected(position: int, replacement: str) -> None:
    if N10[position] == replacement:
        replacement = "q" if replacement != "q" else "p"
    with pytest.raises(Bolt11Error):
        decode(N10[:position] + replacement + N10[position + 1 :])


# --- signinvoice and the n field -------------------------------------------------------------------


def _fake_signinvoice(draft: str, key: PrivateKey) -> str:
    """What CLN's `signinvoice` does: replace the placeholder with the node's signature."""
    hrp, words = _split(draft)
    assert words[-104:] == [0] * 104
    return _sign_words(hrp, words[:-104], key)


def test_encode_for_signinvoice_has_zero_placeholder_signature() -> None:
    unsigned = encode_unsigned(_content(route_hints=((STORE_HOP,),)))
    draft = encode_for_signinvoice(unsigned)
    signed = sign_with_key(unsigned, SPEC_KEY)
    assert draft[: -(104 + 6)] == signed[: -(104 + 6)]
    assert draft[-(104 + 6) : -6] == "q" * 104
    assert _fake_signinvoice(draft, SPEC_KEY) == signed
    with pytest.raises(Bolt11Error, match="not recoverable"):
        decode(draft)


def test_attach_signature_matches_sign_with_key() -> None:
    unsigned = encode_unsigned(_content())
    signature = SPEC_KEY.sign_recoverable(unsigned.sighash(), hasher=None)
    assert attach_signature(unsigned, signature) == sign_with_key(unsigned, SPEC_KEY)
    with pytest.raises(Bolt11Error, match="65-byte recoverable"):
        attach_signature(unsigned, signature[:64] + b"\x04")


def test_n_field_is_written_and_checked() -> None:
    unsigned = encode_unsigned(_content(), payee_field=SPEC_PAYEE)
    invstr = sign_with_key(unsigned, SPEC_KEY)
    assert "np4" + "".join(CHARSET[w] for w in convertbits(SPEC_PAYEE, 8, 5, True) or []) in invstr
    assert decode(invstr).payee == SPEC_PAYEE
    # The n field is authoritative: a valid signature with a different recovery id still verifies.
    hrp, words = _split(invstr)
    recids = {_sign_words(hrp, words[:-104], recid=r) for r in range(4)}
    assert {decode(s).payee for s in recids} == {SPEC_PAYEE}


def test_n_field_of_another_node_is_rejected() -> None:
    other = PrivateKey(b"\x01" * 32)
    unsigned = encode_unsigned(_content(), payee_field=other.public_key.format())
    with pytest.raises(Bolt11Error, match="n field is not the signing key"):
        sign_with_key(unsigned, SPEC_KEY)
    forged = attach_signature(unsigned, SPEC_KEY.sign_recoverable(unsigned.sighash(), hasher=None))
    with pytest.raises(Bolt11Error, match="does not match the payee in the n field"):
        decode(forged)


@pytest.mark.parametrize("position", [-80, -100])
def test_without_n_a_tampered_signature_recovers_another_payee(position: int) -> None:
    # Without an n field there is nothing to check against: recovery just yields another key.
    hrp, words = _split(L2)
    tampered = bech32_encode(hrp, [*words[:position], words[position] ^ 1, *words[position + 1 :]])
    payee = decode(tampered).payee
    assert payee != SPEC_PAYEE
    assert len(payee) == 33


def test_invoice_with_n_and_tampered_signature_fails() -> None:
    invstr = sign_with_key(encode_unsigned(_content(), payee_field=SPEC_PAYEE), SPEC_KEY)
    hrp, words = _split(invstr)
    tampered = bech32_encode(hrp, [*words[:-30], words[-30] ^ 1, *words[-29:]])
    with pytest.raises(Bolt11Error, match="n field"):
        decode(tampered)


# --- malformed input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("invstr", "message"),
    [
        (BAD_FEATURE100, r"unknown compulsory feature bits \[100\]"),
        (BAD_CHECKSUM, "checksum is invalid"),
        (BAD_NO1, "no separator"),
        (BAD_MIXED, "mixes upper and lower case"),
        (BAD_UNRECOVERABLE, "not recoverable"),
        (BAD_UNRECOVERABLE_LEGACY, "not recoverable"),
        (BAD_SHORT, "too short"),
        (BAD_MULTIPLIER, "invalid amount '2500x'"),
        (BAD_SUBMSAT, "not a whole number of millisatoshi"),
    ],
    ids=[
        "feature100",
        "checksum",
        "no-separator",
        "mixed-case",
        "unrecoverable",
        "unrecoverable-legacy",
        "too-short",
        "multiplier",
        "sub-msat",
    ],
)
def test_rejects_spec_invalid_vectors(invstr: str, message: str) -> None:
    with pytest.raises(Bolt11Error, match=message):
        decode(invstr)


GOOD_BODY = _body(P_FIELD, D_FIELD)


@pytest.mark.parametrize(
    ("invstr", "message"),
    [
        (N1[:120], "checksum is invalid"),
        (N1[:-1], "checksum is invalid"),
        (N1[:-1] + "b", "invalid characters in data part"),
        (N1[:30] + "é" + N1[31:], "printable ASCII"),
        ("lnbc1qqqqq", "too short for a checksum"),
        (_sign_words("lnxx", GOOD_BODY), "unknown currency prefix 'xx'"),
        (_sign_words("lnbc2500x", GOOD_BODY), "invalid amount"),
        (_sign_words("lnbc01m", GOOD_BODY), "invalid amount"),
        (_sign_words("lnbc0", GOOD_BODY), "invalid amount"),
        (_sign_words("lnbc1.5m", GOOD_BODY), "invalid amount"),
        (_sign_words("lnbc25", GOOD_BODY)[:-1] + "q", "checksum"),
        (_sign_words("bc", GOOD_BODY), "does not start with 'ln'"),
        (_sign_words("lnbc", _body(D_FIELD)), "missing payment hash"),
        (_sign_words("lnbc", _body(P_FIELD)), "exactly one of d and h"),
        (_sign_words("lnbc", _body(P_FIELD, D_FIELD, _field("h", CAKE_HASH))), "exactly one of d and h"),
        (_sign_words("lnbc", _body(P_FIELD, _field("d", b"\xff\xfe"))), "not valid UTF-8"),
        (_sign_words("lnbc", _body(P_FIELD, D_FIELD, _field("r", b"\x02" * 50))), "not whole hops"),
        (_sign_words("lnbc", _body(P_FIELD, D_FIELD, _field("x", [31] * 14))), "expiry out of range"),
        (_sign_words("lnbc", _body(P_FIELD, D_FIELD, _field("9", [16, 8, 0]))), "no payment_secret"),
        (_sign_words("lnbc", _body(P_FIELD, D_FIELD)[:-3]), "runs past the signature"),
        (_sign_words("lnbc", _body(P_FIELD, D_FIELD, [5, 0])), "truncated tagged field header"),
        (_sign_words("lnbc", GOOD_BODY, recid=4), "recovery id"),
        (bech32_encode("lnbc", _body()[:5]), "too short for timestamp and signature"),
    ],
)
def test_rejects_malformed_input(invstr: str, message: str) -> None:
    with pytest.raises(Bolt11Error, match=message):
        decode(invstr)


def test_error_is_a_value_error() -> None:
    assert issubclass(Bolt11Error, ValueError)


def test_duplicate_and_wrong_length_fields_are_skipped_but_kept() -> None:
    other_hash = bytes(range(32))
    body = _body(P_FIELD, _field("p", other_hash), D_FIELD, _field("s", b"\x11" * 31))
    inv = decode(_sign_words("lnbc", body))
    assert inv.payment_hash == SPEC_HASH
    assert inv.payment_secret is None
    assert [f.letter for f in inv.extra_fields] == ["p", "s"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"currency": "xx"}, "unknown currency"),
        ({"amount_msat": 0}, "must be positive"),
        ({"amount_msat": 2**64}, "amount_msat out of range"),
        ({"timestamp": 2**35}, "timestamp out of range"),
        ({"payment_hash": b"\0" * 31}, "payment_hash must be 32 bytes"),
        ({"payment_secret": b"\0" * 33}, "payment_secret must be 32 bytes"),
        ({"description": "x" * 640}, "description too long"),
        ({"description": "é" * 320}, "description too long"),
        ({"description": None}, "exactly one of d and h"),
        ({"description_hash": CAKE_HASH}, "exactly one of d and h"),
        ({"features": 1 << BASIC_MPP}, "basic_mpp needs payment_secret"),
        ({"features": 1 << PAYMENT_SECRET}, "payment_secret needs var_onion_optin"),
        ({"payment_secret": None}, "payment_secret feature set but no payment_secret"),
        ({"expiry": -1}, "expiry out of range"),
        ({"min_final_cltv_expiry": True}, "must be an integer"),
        ({"route_hints": ((),)}, "1 to 12 hops"),
        ({"route_hints": ((STORE_HOP,) * 13,)}, "1 to 12 hops"),
    ],
)
def test_content_validation(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(Bolt11Error, match=message):
        _content(**overrides)


def test_longest_description_fits() -> None:
    content = _content(description="x" * 639, route_hints=((STORE_HOP,) * 12,))
    assert decode(sign_with_key(encode_unsigned(content), SPEC_KEY)).description == "x" * 639


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pubkey": b"\x02" * 32}, "33 bytes"),
        ({"short_channel_id": 2**64}, "short_channel_id out of range"),
        ({"fee_base_msat": -1}, "fee_base_msat out of range"),
        ({"fee_proportional_millionths": 2**32}, "fee_proportional_millionths out of range"),
        ({"cltv_expiry_delta": 2**16}, "cltv_expiry_delta out of range"),
    ],
)
def test_route_hop_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(Bolt11Error, match=message):
        dataclasses.replace(STORE_HOP, **kwargs)  # type: ignore[arg-type]


def test_payee_field_must_be_a_public_key() -> None:
    with pytest.raises(Bolt11Error, match="payee_field"):
        encode_unsigned(_content(), payee_field=b"\x02" * 32)


def test_tagged_field_validation() -> None:
    with pytest.raises(Bolt11Error, match="field tag"):
        TaggedField(32, ())
    with pytest.raises(Bolt11Error, match="5-bit words"):
        TaggedField(0, (32,))


# --- helpers ------------------------------------------------------------------------------------------


def test_is_expired() -> None:
    inv = decode(L2)  # timestamp 1496314658, expiry 60
    assert inv.expires_at == SPEC_TIME + 60
    assert not inv.is_expired(SPEC_TIME)
    assert not inv.is_expired(SPEC_TIME + 59)
    assert inv.is_expired(SPEC_TIME + 60)


def test_feature_helpers() -> None:
    assert feature_bits(required=[VAR_ONION_OPTIN, PAYMENT_SECRET], optional=[BASIC_MPP]) == DEFAULT_FEATURES
    assert DEFAULT_FEATURES == (1 << 8) | (1 << 14) | (1 << 17)
    assert has_feature(DEFAULT_FEATURES, BASIC_MPP)
    assert has_feature(1 << 9, VAR_ONION_OPTIN)
    assert not has_feature(DEFAULT_FEATURES, 18)
    with pytest.raises(Bolt11Error, match="even"):
        feature_bits(required=[9])


def _tags(unsigned: UnsignedInvoice) -> str:
    """The field letters of `unsigned`, in order."""
    words, pos, letters = unsigned.data, 7, []
    while pos < len(words):
        letters.append(CHARSET[words[pos]])
        pos += 3 + words[pos + 1] * 32 + words[pos + 2]
    return "".join(letters)


def test_field_order_and_optional_fields() -> None:
    legacy = _content(features=0, payment_secret=None)
    assert _tags(encode_unsigned(legacy, include_default_c=False)) == "pd"
    assert _tags(encode_unsigned(legacy)) == "pdc"
    full = _content(
        expiry=60,
        min_final_cltv_expiry=144,
        route_hints=((STORE_HOP,), RUSTY_ROUTE),
        extra_fields=(TaggedField(CHARSET.index("f"), (17, 0)),),
    )
    assert _tags(encode_unsigned(full, payee_field=SPEC_PAYEE)) == "pdsxcrr9nf"
    modern = sign_with_key(encode_unsigned(_content(features=MODERN)), SPEC_KEY)
    assert "9qrsgq" in modern  # bits 8 and 14 in the minimal three words, as in the spec examples


@pytest.mark.parametrize("msat", [MAX_MSAT + 1, 2**63, 2**64 - 1])
def test_amounts_above_21_million_bitcoin_are_refused(msat: int) -> None:
    """An invoice for 2^63 msat made the send flow fail with an internal error (issue 15, finding 8)."""
    invoice = sign_with_key(encode_unsigned(_content(amount_msat=msat)), SPEC_KEY)
    with pytest.raises(Bolt11Error, match="21 million"):
        decode(invoice)
