/*
 * fuzz_config_yaml.c: the YAML configuration front end (broker/conf_yaml.c,
 * with the schema and value conversion of conf.c and conf_schema.c).
 * Input: a YAML configuration file. See fuzz_config.h for what is checked.
 */
#include "config.h"

#include "fuzz_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_config_one(data, size, CONFIG_FORMAT_YAML);
	return 0;
}
