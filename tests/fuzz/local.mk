# tests/fuzz/: libFuzzer targets (README: Fuzzing). Not part of `all` or `check`:
# `make fuzz` builds them with clang into tests/fuzz/bin of the build directory,
# using this build's config.h; tests/fuzz/run.sh runs them.
fuzz: config.h
	MIDGE_CONFIG_H='$(abs_top_builddir)/config.h' \
		$(SHELL) '$(abs_top_srcdir)/tests/fuzz/build.sh' '$(abs_top_builddir)/tests/fuzz/bin'
.PHONY: fuzz

EXTRA_DIST += tests/fuzz/build.sh tests/fuzz/run.sh tests/fuzz/seeds.py \
	tests/fuzz/ignorelist.txt tests/fuzz/fuzz.h tests/fuzz/fuzz_config.h \
	tests/fuzz/fuzz_codec.c tests/fuzz/fuzz_config_yaml.c tests/fuzz/fuzz_config_mosq.c \
	tests/fuzz/fuzz_passwd.c tests/fuzz/fuzz_acl.c tests/fuzz/fuzz_ws.c \
	tests/fuzz/fuzz_persist.c tests/fuzz/fuzz_broker.c tests/fuzz/gen_persist_seeds.c \
	tests/fuzz/corpus
