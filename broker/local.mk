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
	broker/config.c broker/config.h broker/config_schema.c broker/config_schema.h \
	broker/config_yaml.c broker/config_mosq.c
if HAVE_EPOLL
libmidgecore_la_SOURCES += broker/ev_epoll.c
endif
libmidgecore_la_CFLAGS = $(AM_CFLAGS) $(YAML_CFLAGS) $(OPENSSL_CFLAGS)
libmidgecore_la_LIBADD = libmidgecodec.la $(YAML_LIBS) $(OPENSSL_LIBS)

sbin_PROGRAMS += midge
midge_SOURCES = broker/main.c
midge_LDADD = libmidgecore.la
