// Shared by the AVX2 row dots and repacking routines (qdot_k_amd64.s,
// qdot_k23_amd64.s, qdot_iq4_amd64.s, qgemm16avx2_amd64.s).

// Q3KSCALES sets X register x to the sixteen 6-bit scale fields (+32) of a
// Q3_K block whose 12 scale bytes have their dwords at p0, p1 and p2: low
// nibbles from bytes 0-7, the high pairs from bytes 8-11 (clobbers the
// 32-bit registers a, b, c, t and u).
#define Q3KSCALES(p0, p1, p2, x, a, b, c, t, u) \
	MOVL    p0, a; \
	MOVL    p1, b; \
	MOVL    p2, c; \
	MOVL    c, t; \
	ANDL    $0x03030303, t; \
	SHLL    $4, t; \
	MOVL    a, u; \
	ANDL    $0x0f0f0f0f, u; \
	ORL     t, u; \
	VMOVD   u, x; \
	MOVL    c, t; \
	SHRL    $2, t; \
	ANDL    $0x03030303, t; \
	SHLL    $4, t; \
	MOVL    b, u; \
	ANDL    $0x0f0f0f0f, u; \
	ORL     t, u; \
	VPINSRD $1, u, x, x; \
	MOVL    c, t; \
	SHRL    $4, t; \
	ANDL    $0x03030303, t; \
	SHLL    $4, t; \
	MOVL    a, u; \
	SHRL    $4, u; \
	ANDL    $0x0f0f0f0f, u; \
	ORL     t, u; \
	VPINSRD $2, u, x, x; \
	SHRL    $6, c; \
	ANDL    $0x03030303, c; \
	SHLL    $4, c; \
	SHRL    $4, b; \
	ANDL    $0x0f0f0f0f, b; \
	ORL     c, b; \
	VPINSRD $3, b, x, x

// HSUMSTORE adds the eight floats of Y register y (x its low half) as
// KHSUM_Y0 does, pairwise from the halves down, and stores the sum at o
// (clobbers X register t).
#define HSUMSTORE(y, x, t, o) \
	VEXTRACTF128 $1, y, t; \
	VADDPS       t, x, x; \
	VMOVHLPS     x, x, t; \
	VADDPS       t, x, x; \
	VMOVSHDUP    x, t; \
	VADDSS       t, x, x; \
	VMOVSS       x, o
