/*
 * persist_codec.h: the byte encoding of the durable store's records and keys.
 *
 * Owns the record layouts (each starts with a record version byte and ends
 * with a CRC-32 of the rest) and their
 * decoding, which trusts nothing it reads: every length is bounds-checked,
 * enums are range-checked and trailing bytes are refused. Encoders called
 * with out == NULL return the size they need. Pure: no LMDB, no allocation.
 */
#ifndef MIDGE_PERSIST_CODEC_H
#define MIDGE_PERSIST_CODEC_H

#include "persist.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PERSIST_RECORD_V1 1u
#define PERSIST_MAGIC "MIDGEPST"
#define PERSIST_MAGIC_LEN 8u

struct persist_header {
	uint32_t format;   /* PERSIST_FORMAT_VERSION */
	int64_t created;   /* unix seconds */
};

/* The header's decode result: 0, -1 undecodable (damaged), or -2 a well-formed header of
 * another format version (f->format says which). */
size_t pcodec_enc_header(uint8_t *out, const struct persist_header *h);
int pcodec_dec_header(const uint8_t *in, size_t len, struct persist_header *h);

size_t pcodec_enc_msg(uint8_t *out, const struct persist_msg *m);
int pcodec_dec_msg(const uint8_t *in, size_t len, struct persist_msg *m);

/* The size of a reference count record (version, count, CRC). */
#define PCODEC_REFS_SIZE 9u
size_t pcodec_enc_refs(uint8_t *out, uint32_t refs);
int pcodec_dec_refs(const uint8_t *in, size_t len, uint32_t *refs);

size_t pcodec_enc_id(uint8_t *out, uint64_t id); /* a retained entry's value */
int pcodec_dec_id(const uint8_t *in, size_t len, uint64_t *id);

size_t pcodec_enc_session(uint8_t *out, const struct persist_session *s);
int pcodec_dec_session(const uint8_t *in, size_t len, struct persist_session *s);

size_t pcodec_enc_sub(uint8_t *out, const struct persist_sub *s);
int pcodec_dec_sub(const uint8_t *in, size_t len, struct persist_sub *s);

size_t pcodec_enc_qentry(uint8_t *out, const struct persist_qentry *e);
int pcodec_dec_qentry(const uint8_t *in, size_t len, struct persist_qentry *e);

/* Keys. Message ids and sequence numbers are big-endian so that LMDB's byte order is
 * numeric order. Per-client keys start with the client id's length (2 bytes) and the
 * client id, so one client's records are one contiguous range. */
void pcodec_put_u64(uint8_t *out, uint64_t v);
uint64_t pcodec_get_u64(const uint8_t *in);
/* Client prefix (len must be <= 0xffff): 2 + len bytes. */
size_t pcodec_enc_prefix(uint8_t *out, const void *cid, size_t len);
/* Splits a subscription or queue key: the client id, then the rest (filter or 8-byte seq). */
int pcodec_split_key(const uint8_t *key, size_t klen, const uint8_t **cid, size_t *cidlen,
		     const uint8_t **rest, size_t *restlen);

#endif
