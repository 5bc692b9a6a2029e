# broker/tools/: command-line tools built on the codec.

# midge_passwd: mosquitto_passwd's interface over broker/passwd.c, so the tool
# and the broker read password files with the same code.
bin_PROGRAMS += midge_passwd
midge_passwd_SOURCES = broker/tools/midge_passwd.c broker/passwd.c broker/passwd.h \
	broker/alloc.c broker/alloc.h
midge_passwd_CFLAGS = $(AM_CFLAGS) $(OPENSSL_CFLAGS) $(ARGON2_CFLAGS)
midge_passwd_LDADD = $(OPENSSL_LIBS) $(ARGON2_LIBS)

# midge_bench: a load generator (connect and publish rates, broker CPU time)
# on the broker's own codec; scripts/bench and scripts/bench-lua drive it.
bin_PROGRAMS += midge_bench
midge_bench_SOURCES = broker/tools/midge_bench.c
midge_bench_LDADD = libmidgecodec.la
