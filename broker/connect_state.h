/*
 * connect_state.h: what a connection remembers between packets while it is
 * being authenticated.
 *
 * Owns two small records: the MQTT 5 extended authentication of a client
 * (its method, the plugin that is talking to it, and the CONNECT waiting
 * for the exchange to end), and a CONNECT already decided on one worker
 * that moves to another because a plugin renamed the client.
 */
#ifndef MIDGE_CONNECT_STATE_H
#define MIDGE_CONNECT_STATE_H

#include <stdbool.h>
#include <stdint.h>

struct midge_plugin;

struct ext_auth {
	char *method;                 /* Authentication Method agreed at CONNECT */
	char *client_id;              /* the id the CONNECT asks for, while the exchange goes on */
	struct midge_plugin *plugin;  /* the plugin that asked for another round */
	bool in_progress;             /* AUTH packets are expected now */
	bool reauth;                  /* the exchange is a re-authentication */
	bool done;                    /* CONNECT replay: the exchange succeeded */
	uint8_t *connect;             /* the CONNECT body waiting for the exchange */
	uint32_t connect_len;
	uint8_t connect_flags;
	uint8_t *out_data;            /* data for the CONNACK after success */
	uint32_t out_len;
	char *username;               /* a rename asked for with the success */
};

struct preauth {
	char *client_id;              /* the id a plugin chose */
	char *username;
	bool has_username;
	uint8_t *auth_data;           /* extended auth: data for the CONNACK */
	uint32_t auth_len;
	bool ext_auth;
	/* Another node took this id over while the CONNECT waited (cluster_session_move.c):
	 * it is accepted, then closed as a taken-over connection. */
	bool taken_over;
	bool taken_clean_start;   /* the new connection's clean start */
};

void ext_auth_free(struct ext_auth *x);
void preauth_free(struct preauth *p);

#endif
