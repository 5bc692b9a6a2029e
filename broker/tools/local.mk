# broker/tools/: command-line tools built on the codec.

# midge_passwd: mosquitto_passwd's interface over broker/passwd.c, so the tool
# and the broker read password files with the same code.
bin_PROGRAMS += midge_passwd
midge_passwd_SOURCES = broker/tools/midge_passwd.c broker/passwd.c broker/passwd.h \
	broker/alloc.c broker/alloc.h
midge_passwd_CFLAGS = $(AM_CFLAGS) $(OPENSSL_CFLAGS) $(ARGON2_CFLAGS)
midge_passwd_LDADD = $(OPENSSL_LIBS) $(ARGON2_LIBS)

# midge_bench: an epoll load generator (fan-in, fan-out, pairs, connect storm,
# idle connections; broker CPU time and memory) on the broker's own codec;
# scripts/bench*, tests/bench/compare.sh and tests/bench/callgrind.sh drive it.
bin_PROGRAMS += midge_bench
midge_bench_SOURCES = broker/tools/midge_bench.c broker/tools/bench.h \
	broker/tools/bench_util.c broker/tools/bench_net.c broker/tools/bench_flow.c \
	broker/tools/bench_conn.c
midge_bench_LDADD = libmidgecodec.la

# midge_pub / midge_sub: mosquitto_pub and mosquitto_sub's options on the codec.
# What both share (options, the connection over TCP, TLS or WebSockets, QoS
# flows, keepalive) is mqttc.c / mqttc_args.c, with ws.c's Sec-WebSocket-Accept.
noinst_LTLIBRARIES += libmidgeclient.la
libmidgeclient_la_SOURCES = broker/tools/mqttc.c broker/tools/mqttc.h broker/tools/mqttc_args.c \
	broker/ws.c broker/ws.h
libmidgeclient_la_CFLAGS = $(AM_CFLAGS) $(OPENSSL_CFLAGS)
libmidgeclient_la_LIBADD = libmidgecodec.la $(OPENSSL_LIBS)

bin_PROGRAMS += midge_pub midge_sub
midge_pub_SOURCES = broker/tools/midge_pub.c
midge_pub_LDADD = libmidgeclient.la -lm
midge_sub_SOURCES = broker/tools/midge_sub.c
midge_sub_LDADD = libmidgeclient.la
