# broker/: the core as a convenience library (so unit tests link it) plus the midge program.

noinst_LTLIBRARIES += libmidgecodec.la libmidgecore.la

# The pure codec, shared by the broker, the command-line tools and the fuzzers.
libmidgecodec_la_SOURCES = \
	broker/packet.c broker/packet.h \
	broker/utf8.c \
	broker/property.c broker/property.h \
	broker/codec.h broker/codec_decode.c broker/codec_encode.c \
	broker/topic.c broker/topic.h

libmidgecore_la_SOURCES = \
	broker/alloc.c broker/alloc.h \
	broker/log.c broker/log.h \
	broker/ev.c broker/ev.h broker/ev_backend.h broker/ev_poll.c \
	broker/conf.c broker/conf_emit.c broker/conf.h broker/conf_schema.c broker/conf_schema.h \
	broker/conf_yaml.c broker/conf_mosq.c broker/conf_reload.c broker/conf_reload.h \
	broker/message.c broker/message.h \
	broker/outq.c broker/outq.h \
	broker/tnode.c broker/tnode.h \
	broker/subtree.c broker/subtree.h \
	broker/retain.c broker/retain.h \
	broker/session.c broker/session.h \
	broker/will.c broker/will.h \
	broker/deliver.c broker/deliver.h \
	broker/route.c broker/route.h \
	broker/throttle.c broker/throttle.h \
	broker/conn.h broker/conn_tcp.c \
	broker/ws.c broker/ws.h broker/conn_ws.c broker/conn_ws.h \
	broker/listener.c broker/listener.h \
	broker/client.c broker/client.h \
	broker/worker.c broker/worker.h \
	broker/broker.c broker/broker.h \
	broker/sys.c broker/sys.h \
	broker/auth.c broker/auth.h \
	broker/plugin.c broker/plugin.h broker/plugin_api.c \
	broker/hooks.c broker/hooks.h broker/plugin_timers.c broker/decision.c broker/decision.h \
	broker/sec_builtin.c broker/sec_builtin.h broker/connect_state.h \
	broker/dryrun.c broker/dryrun.h \
	broker/authpool.c broker/authpool.h \
	broker/passwd.c broker/passwd.h \
	broker/acl.c broker/acl.h \
	broker/policy.c broker/policy.h \
	broker/tls_ctx.c broker/tls_ctx.h \
	broker/conn_tls.c broker/conn_tls.h \
	broker/process.c broker/process.h \
	broker/dispatch.c broker/dispatch.h \
	broker/handle_connect.c broker/handle_publish.c broker/handle_ack.c \
	broker/handle_subscribe.c broker/handle_unsubscribe.c broker/handle_ping.c \
	broker/handle_disconnect.c broker/handle_auth.c \
	broker/send.h broker/send_connack.c broker/send_publish.c broker/send_ack.c \
	broker/send_disconnect.c broker/send_auth.c \
	broker/topic_alias.c broker/topic_alias.h \
	broker/persist.h broker/persist_lmdb.c broker/persist_apply.c broker/persist_read.c \
	broker/persist_batch.c broker/persist_recover.c broker/persist_check.c broker/persist_int.h \
	broker/persist_codec.c broker/persist_codec.h \
	broker/persist_writer.c broker/persist_writer.h \
	broker/store.c broker/store.h broker/store_int.h broker/store_record.c broker/store_restore.c \
	broker/bridge.c broker/bridge.h broker/bridge_int.h broker/bridge_proto.c broker/bridge_topic.c \
	broker/bridge_tls.c broker/http.c broker/http.h broker/metrics.c broker/metrics.h \
	broker/client_events.c broker/client_events.h broker/sdnotify.c broker/sdnotify.h \
	broker/cluster.h broker/cluster_wire.h broker/cluster_topic.c broker/cluster_codec.c \
	broker/cluster_queue.c broker/cluster_session_wire.h broker/cluster_session_codec.c \
	broker/cluster_acks.h broker/cluster_acks.c broker/cluster_key.c broker/cluster_mark.c broker/cluster_seen.c
# The cluster (cluster.h) over NATS when libnats is there; stubs otherwise.
if HAVE_NATS
libmidgecore_la_SOURCES += broker/cluster_int.h broker/cluster_nats.c broker/cluster_interest.c \
	broker/cluster_jobs.c broker/cluster_shared.c broker/cluster_session.c \
	broker/cluster_session_move.c broker/cluster_replay.c broker/cluster_qos.c broker/cluster_retain.c \
	broker/cluster_wills.h broker/cluster_wills.c broker/cluster_nodes.c
else
libmidgecore_la_SOURCES += broker/cluster_stub.c
endif
if HAVE_EPOLL
libmidgecore_la_SOURCES += broker/ev_epoll.c
endif
libmidgecore_la_CFLAGS = $(AM_CFLAGS) $(YAML_CFLAGS) $(OPENSSL_CFLAGS) $(ARGON2_CFLAGS) $(LMDB_CFLAGS) \
	$(NATS_CFLAGS)
libmidgecore_la_LIBADD = libmidgecodec.la $(YAML_LIBS) $(OPENSSL_LIBS) $(ARGON2_LIBS) $(LMDB_LIBS) \
	$(NATS_LIBS) -ldl -lm

sbin_PROGRAMS += midge
midge_SOURCES = broker/main.c
midge_LDADD = libmidgecore.la
