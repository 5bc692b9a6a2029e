/*
 * fuzz_config_mosq.c: the mosquitto.conf front end (broker/conf_mosq.c, with
 * the schema and value conversion of conf.c and conf_schema.c).
 * Input: a mosquitto.conf file. See fuzz_config.h for what is checked.
 */
#include "config.h"

#include "fuzz_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_config_one(data, size, CONFIG_FORMAT_MOSQUITTO);
	return 0;
}
