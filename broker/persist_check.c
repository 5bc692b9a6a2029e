/*
 * persist_check.c: a structural check of the store's LMDB data file, run
 * before LMDB maps it. LMDB trusts its pages: a damaged page can make it read
 * outside the map or its own arrays (crash). So this walks every B-tree the
 * newest meta page names (the free list, the main database and each named
 * database) with bounded reads and checks each page and node against the
 * file, and key order across the tree (LMDB 0.9 on-disk format, 64-bit).
 * Damage inside record values is left to the record decoder (persist_codec.c).
 */
#include "config.h"

#include "persist_int.h"

#include "alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* LMDB's on-disk layout (mdb.c, 0.9.x; pgno_t and size_t of 64 bits). */
enum {
	PAGEHDR = 16,         /* mp_pgno(8) mp_pad(2) mp_flags(2) mp_lower(2) mp_upper(2) */
	NODEHDR = 8,          /* mn_lo(2) mn_hi(2) mn_flags(2) mn_ksize(2) */
	META = PAGEHDR,       /* MDB_meta in page 0 and page 1 */
	M_MAGIC = META, M_DBS = META + 24, M_LASTPG = META + 120, M_TXNID = META + 128,
	M_SIZE = META + 136,
	DB_SIZE = 48,         /* MDB_db: pad(4) flags(2) depth(2) branch leaf overflow entries root (8 each) */
	P_BRANCH = 0x01, P_LEAF = 0x02, P_OVERFLOW = 0x04,
	F_BIGDATA = 0x01, F_SUBDATA = 0x02,
	MAX_DEPTH = 30,       /* LMDB's cursor stack holds 32 pages */
};
/* Transaction ids count commits from 1: a store at a million commits a second reaches
 * this after 146,000 years. Past it the ids would wrap to 0, which LMDB takes for "none". */
#define MAX_TXNID ((uint64_t)1 << 62)
#define P_INVALID UINT64_MAX
#define LMDB_MAGIC 0xBEEFC0DEu

enum tree { T_FREE, T_MAIN, T_NAMED };

struct chk {
	int fd;
	uint32_t psize;
	uint64_t last;        /* last page in use */
	uint64_t txnid;       /* the newest meta page's transaction */
	uint8_t *seen;        /* a bit per page: already part of a tree */
	const char *why;
};

static uint16_t u16at(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return v;
}

static uint32_t u32at(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static uint64_t u64at(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

static int bad(struct chk *c, const char *why)
{
	if (!c->why)
		c->why = why;
	return -1;
}

/* Claims pages pgno .. pgno+n-1 for one tree. */
static int claim(struct chk *c, uint64_t pgno, uint64_t n)
{
	if (pgno < 2 || n == 0 || pgno > c->last || n > c->last - pgno + 1)
		return bad(c, "a page number is out of range");
	for (uint64_t i = pgno; i < pgno + n; i++) {
		if (c->seen[i / 8] & (1u << (i % 8)))
			return bad(c, "a page is used twice");
		c->seen[i / 8] |= (uint8_t)(1u << (i % 8));
	}
	return 0;
}

static int read_at(struct chk *c, void *buf, size_t len, uint64_t off)
{
	if (pread(c->fd, buf, len, (off_t)off) != (ssize_t)len)
		return bad(c, "cannot read a page");
	return 0;
}

/* A free-list record: a count, then that many page numbers, none of them in a tree. */
static int check_idl(struct chk *c, const uint8_t *d, size_t len)
{
	uint64_t n;
	if (len < 8 || len % 8 != 0)
		return bad(c, "a free-list record is damaged");
	n = u64at(d);
	if (n != len / 8 - 1)
		return bad(c, "a free-list record is damaged");
	for (uint64_t i = 1; i <= n; i++) {
		uint64_t pg = u64at(d + 8 * i);
		if (pg < 2 || pg > c->last)
			return bad(c, "the free list names a page out of range");
		/* LMDB would reuse it while a tree still holds it (the main tree is walked first) */
		if (c->seen[pg / 8] & (1u << (pg % 8)))
			return bad(c, "the free list names a page in use");
	}
	return 0;
}

/* A key range a page's keys must fall in: [lo, hi); NULL = unbounded. */
struct range {
	const uint8_t *lo, *hi;
	size_t lolen, hilen;
};

static int walk(struct chk *c, uint64_t pgno, unsigned level, unsigned depth, enum tree t,
		const struct range *r);

static int cmp_span(const void *a, const void *b)
{
	const uint32_t *x = a, *y = b;
	return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* Refuses nodes that overlap (LMDB would move the wrong bytes deleting one). */
static int overlap(struct chk *c, const uint8_t *pg, unsigned nkeys, bool leaf)
{
	uint32_t *span = mem_malloc(((size_t)nkeys + 1) * 2 * sizeof(uint32_t));
	int rc = 0;
	if (!span)
		return bad(c, "out of memory");
	for (unsigned i = 0; i < nkeys; i++) {
		const uint8_t *node = pg + u16at(pg + PAGEHDR + 2 * i);
		uint32_t size = NODEHDR + u16at(node + 6);
		if (leaf)
			size += u16at(node + 4) & F_BIGDATA ? 8 : ((uint32_t)u16at(node) | (uint32_t)u16at(node + 2) << 16);
		span[2 * i] = u16at(pg + PAGEHDR + 2 * i);
		span[2 * i + 1] = span[2 * i] + size;
	}
	qsort(span, nkeys, 2 * sizeof(uint32_t), cmp_span);
	for (unsigned i = 0; i + 1 < nkeys && rc == 0; i++)
		if (span[2 * i + 1] > span[2 * i + 2])
			rc = bad(c, "nodes overlap");
	mem_free(span);
	return rc;
}

/* LMDB's key order: the free list's keys are native 8-byte integers (MDB_INTEGERKEY);
 * the others are bytes, then the shorter first. */
static int keycmp(enum tree t, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	int d;
	if (t == T_FREE) {
		uint64_t x = u64at(a), y = u64at(b);
		return x < y ? -1 : x > y;
	}
	d = memcmp(a, b, alen < blen ? alen : blen);
	return d ? d : alen < blen ? -1 : alen > blen;
}

static int check_tree(struct chk *c, const uint8_t *db, enum tree t)
{
	uint16_t depth = u16at(db + 6);
	uint64_t root = u64at(db + 40);
	/* midge's databases use no LMDB flags (no DUPSORT...); the free list's keys are integers.
	 * Empty ones too: LMDB writes into an empty database as its flags say. */
	if (u16at(db + 4) != (t == T_FREE ? MDB_INTEGERKEY : 0))
		return bad(c, "a database record has unexpected flags");
	/* An empty tree has depth 0: LMDB would build on a wrong one (a leaf root at depth 2). */
	if (root == P_INVALID)
		return depth == 0 ? 0 : bad(c, "a database record is damaged");
	if (depth < 1 || depth > MAX_DEPTH)
		return bad(c, "a database record is damaged");
	return walk(c, root, 1, depth, t, &(struct range){ NULL, NULL, 0, 0 });
}

/* Checks one leaf node's data (at d, dsize bytes, within the page). */
static int check_leaf_data(struct chk *c, uint16_t flags, const uint8_t *d, uint64_t dsize, enum tree t)
{
	uint8_t hdr[PAGEHDR];
	uint8_t *big = NULL;
	uint64_t ovpg, pages;
	int rc = 0;

	if (t == T_MAIN)
		return flags == F_SUBDATA && dsize == DB_SIZE ? check_tree(c, d, T_NAMED) :
								bad(c, "the main database is damaged");
	if (flags == 0)
		return t == T_FREE ? check_idl(c, d, (size_t)dsize) : 0;
	if (flags != F_BIGDATA)
		return bad(c, "a node has unexpected flags");
	/* data on overflow pages: d holds their first page number */
	ovpg = u64at(d);
	if (ovpg < 2 || ovpg > c->last || read_at(c, hdr, sizeof(hdr), ovpg * c->psize) != 0)
		return bad(c, "an overflow page number is out of range");
	pages = u32at(hdr + 12);
	if (u64at(hdr) != ovpg || u16at(hdr + 10) != P_OVERFLOW ||
	    dsize > pages * c->psize - PAGEHDR || dsize + PAGEHDR + c->psize <= pages * c->psize)
		return bad(c, "an overflow page is damaged");
	if (claim(c, ovpg, pages) != 0)
		return -1;
	if (t == T_FREE) {
		if (dsize > ((uint64_t)1 << 32) || !(big = mem_malloc((size_t)dsize)))
			return bad(c, "a free-list record is too large");
		if ((rc = read_at(c, big, (size_t)dsize, ovpg * c->psize + PAGEHDR)) == 0)
			rc = check_idl(c, big, (size_t)dsize);
		mem_free(big);
	}
	return rc;
}

static int walk(struct chk *c, uint64_t pgno, unsigned level, unsigned depth, enum tree t,
		const struct range *r)
{
	uint8_t *pg;
	uint16_t flags, lower, upper;
	unsigned nkeys;
	const uint8_t *prev = NULL;
	size_t prevlen = 0;
	int rc = 0;

	if (level > depth)
		return bad(c, "a tree is deeper than its record says");
	if (claim(c, pgno, 1) != 0)
		return -1;
	if (!(pg = mem_malloc(c->psize)))
		return bad(c, "out of memory");
	if (read_at(c, pg, c->psize, pgno * c->psize) != 0)
		goto out_bad;
	flags = u16at(pg + 10);
	lower = u16at(pg + 12);
	upper = u16at(pg + 14);
	/* Exactly the type: LMDB clears its in-memory flags (P_DIRTY...) before writing, and
	 * would never write back a page marked P_LOOSE or P_KEEP that recovery rewrites.
	 * The free space's end is even: LMDB starts it at the page size and moves it by even
	 * node sizes only, and places a node it adds at upper minus its size, so an odd one
	 * would give the rewritten page a node at an odd offset (found by fuzzing). */
	if (u64at(pg) != pgno || flags != (level == depth ? P_LEAF : P_BRANCH) ||
	    lower < PAGEHDR || lower > upper || upper > c->psize || (lower - PAGEHDR) % 2 != 0 ||
	    (upper & 1)) {
		bad(c, "a page header is damaged");
		goto out_bad;
	}
	nkeys = (lower - PAGEHDR) / 2;
	if (level < depth && nkeys < 1) {
		bad(c, "a branch page is empty");
		goto out_bad;
	}
	/* first pass: bounds and key order (a branch's first key is implicit) */
	for (unsigned i = 0; i < nkeys; i++) {
		uint16_t off = u16at(pg + PAGEHDR + 2 * i);
		const uint8_t *node = pg + off, *key;
		uint16_t nflags, ksize;
		uint64_t dsize;

		if (off < upper || off > c->psize - NODEHDR || (off & 1)) {
			bad(c, "a node offset is damaged");
			goto out_bad;
		}
		nflags = u16at(node + 4);
		ksize = u16at(node + 6);
		key = node + NODEHDR;
		if (ksize > PERSIST_KEY_MAX || (size_t)off + NODEHDR + ksize > c->psize) {
			bad(c, "a node key is damaged");
			goto out_bad;
		}
		if (level == depth) {
			dsize = (uint64_t)u16at(node) | (uint64_t)u16at(node + 2) << 16;
			if (ksize == 0 ||
			    (size_t)off + NODEHDR + ksize + (nflags & F_BIGDATA ? 8 : dsize) > c->psize) {
				bad(c, "a node is damaged");
				goto out_bad;
			}
		} else if (i == 0) {
			continue;
		}
		/* A free-list key is the transaction that freed the pages: from 1 (LMDB's first
		 * write) to the newest. LMDB's free-page bookkeeping takes 0 for "no record": it
		 * would reuse the pages of a record 0 twice (and abort: mdb_page_dirty). */
		if (t == T_FREE && (ksize != 8 || (level == depth && (u64at(key) == 0 ||
								      u64at(key) > c->txnid)))) {
			bad(c, "a free-list key is damaged");
			goto out_bad;
		}
		if ((prev && keycmp(t, prev, prevlen, key, ksize) >= 0) ||
		    (r->lo && keycmp(t, key, ksize, r->lo, r->lolen) < 0) ||
		    (r->hi && keycmp(t, key, ksize, r->hi, r->hilen) >= 0)) {
			bad(c, "keys are out of order");
			goto out_bad;
		}
		prev = key;
		prevlen = ksize;
	}
	if (overlap(c, pg, nkeys, level == depth) != 0)
		goto out_bad;
	/* second pass: children and data */
	for (unsigned i = 0; i < nkeys && rc == 0; i++) {
		const uint8_t *node = pg + u16at(pg + PAGEHDR + 2 * i);
		uint16_t nflags = u16at(node + 4), ksize = u16at(node + 6);

		if (level < depth) {
			uint64_t child = (uint64_t)u16at(node) | (uint64_t)u16at(node + 2) << 16 |
					 (uint64_t)nflags << 32;
			struct range sub = *r;
			if (i > 0) {
				sub.lo = node + NODEHDR;
				sub.lolen = ksize;
			}
			if (i + 1 < nkeys) {
				const uint8_t *next = pg + u16at(pg + PAGEHDR + 2 * (i + 1));
				sub.hi = next + NODEHDR;
				sub.hilen = u16at(next + 6);
			}
			rc = walk(c, child, level + 1, depth, t, &sub);
		} else {
			uint64_t dsize = (uint64_t)u16at(node) | (uint64_t)u16at(node + 2) << 16;
			rc = check_leaf_data(c, nflags, node + NODEHDR + ksize, dsize, t);
		}
	}
	mem_free(pg);
	return rc;
out_bad:
	mem_free(pg);
	return -1;
}

const char *persist_check_file(const char *path)
{
	uint8_t meta[2][M_SIZE];
	struct chk c = { .fd = -1 };
	struct stat st;
	int newest;

	c.fd = open(path, O_RDONLY | O_CLOEXEC);
	if (c.fd < 0)
		return errno == ENOENT ? NULL : "cannot read the data file";
	if (fstat(c.fd, &st) != 0) {
		close(c.fd);
		return "cannot read the data file";
	}
	if (st.st_size == 0) {
		close(c.fd);
		return NULL; /* LMDB initialises an empty file */
	}
	for (int i = 0; i < 2 && !c.why; i++) {
		uint32_t psize;
		uint64_t lastpg;
		/* the second meta page is one page after the first */
		if (read_at(&c, meta[i], M_SIZE, i == 0 ? 0 : c.psize) != 0) {
			c.why = "the data file is truncated";
			break;
		}
		psize = u32at(meta[i] + M_DBS); /* the free database's pad holds the page size */
		lastpg = u64at(meta[i] + M_LASTPG);
		if (i == 0)
			c.psize = psize;
		if (u32at(meta[i] + M_MAGIC) != LMDB_MAGIC || psize < 512 || psize > 65536 ||
		    (psize & (psize - 1)) || psize != c.psize || lastpg < 1)
			c.why = "the data file's meta pages are damaged";
		/* LMDB writes pages of this machine's page size: a file of another size (from
		 * another machine, or a damaged meta page) would make it overrun its buffers. */
		else if (psize != (uint32_t)sysconf(_SC_PAGESIZE))
			c.why = "the data file's page size is not this machine's";
		else if (lastpg >= (uint64_t)st.st_size / psize)
			c.why = "the data file is truncated";
	}
	if (!c.why) {
		/* LMDB uses the meta page of the newer transaction: its transactions take the
		 * largest id and read meta page (id & 1), whichever page holds that id (a
		 * damaged file may name the same id twice). */
		uint64_t t0 = u64at(meta[0] + M_TXNID), t1 = u64at(meta[1] + M_TXNID);
		newest = (int)((t0 > t1 ? t0 : t1) & 1);
		c.last = u64at(meta[newest] + M_LASTPG);
		c.txnid = t0 > t1 ? t0 : t1;
		/* LMDB numbers the next write transaction txnid + 1: at 2^64 - 1 that is 0, which its
		 * free-page bookkeeping takes for "none", and it hands a page out twice (an abort in
		 * mdb_page_dirty, found by fuzzing). No store comes near: such an id is damage. */
		if (c.txnid >= MAX_TXNID)
			c.why = "the data file's meta pages are damaged (transaction id)";
		else if (!(c.seen = mem_calloc((size_t)(c.last / 8 + 1), 1)))
			c.why = "out of memory checking the data file";
		else if (check_tree(&c, meta[newest] + M_DBS + DB_SIZE, T_MAIN) == 0)
			check_tree(&c, meta[newest] + M_DBS, T_FREE);
		mem_free(c.seen);
	}
	close(c.fd);
	return c.why;
}
