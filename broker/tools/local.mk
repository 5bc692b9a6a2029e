# broker/tools/: command-line tools built on the codec.

# midge_passwd: mosquitto_passwd's interface over broker/passwd.c, so the tool
# and the broker read password files with the same code.
bin_PROGRAMS += midge_passwd
midge_passwd_SOURCES = broker/tools/midge_passwd.c broker/passwd.c broker/passwd.h \
	broker/alloc.c broker/alloc.h
midge_passwd_CFLAGS = $(AM_CFLAGS) $(OPENSSL_CFLAGS) $(ARGON2_CFLAGS)
midge_passwd_LDADD = $(OPENSSL_LIBS) $(ARGON2_LIBS)
