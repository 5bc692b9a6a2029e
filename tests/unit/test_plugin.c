/*
 * test_plugin.c: the plugin host without a running broker: loading and
 * refusing shared objects, instances across reloads, chain order, the
 * register-only-in-init rule, event names, and messages built from
 * plugin-given properties.
 */
#include "config.h"

#include "tests.h"

#include "alloc.h"
#include "conf.h"
#include "hooks.h"
#include "message.h"
#include "plugin.h"
#include "property.h"

#include <midge/plugin.h>
#include <stdio.h>
#include <string.h>

static char path_buf[1024];

static const char *plugin_so(const char *name)
{
	snprintf(path_buf, sizeof(path_buf), "%s/%s.so", TEST_PLUGIN_DIR, name);
	return path_buf;
}

static struct config_plugin entry(const char *path, struct config_plugin_opt *opts, size_t n)
{
	return (struct config_plugin){.path = (char *)path, .opts = opts, .nopts = n,
				      .loc = {.file = "test.yaml", .line = 7}};
}

static bool diag_mentions(const struct config_diag *d, const char *what)
{
	for (size_t i = 0; i < d->nerrors; i++)
		if (strstr(d->errors[i].message, what))
			return true;
	return false;
}

START_TEST(test_event_names)
{
	for (int e = 1; e < MIDGE_EVT_LIMIT; e++)
		ck_assert_str_ne(plugin_event_name(e), "unknown");
	ck_assert_str_eq(plugin_event_name(MIDGE_EVT_BASIC_AUTH), "basic_auth");
	ck_assert_str_eq(plugin_event_name(MIDGE_EVT_WORKER_STOP), "worker_stop");
	ck_assert_str_eq(plugin_event_name(0), "unknown");
	ck_assert_str_eq(plugin_event_name(MIDGE_EVT_LIMIT), "unknown");
}
END_TEST

START_TEST(test_bad_plugins_are_refused_with_the_reason)
{
	static const struct {
		const char *name;
		const char *reason;
	} cases[] = {
		{"bad_version", "unsupported ABI version 999"},
		{"no_init", "missing symbol midge_plugin_init"},
		{"does_not_exist", "cannot open shared object"},
	};
	struct plugin_host *h = plugin_host_new(2);

	ck_assert_ptr_nonnull(h);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config_diag d = {0};
		struct config_plugin cp = entry(plugin_so(cases[i].name), NULL, 0);
		ck_assert_ptr_null(plugin_instance(h, &cp, "global", 0, false, &d));
		ck_assert_msg(diag_mentions(&d, cases[i].reason), "%s: %s", cases[i].name,
			      d.nerrors ? d.errors[0].message : "no error");
		ck_assert_int_eq(d.errors[0].loc.line, 7);
		config_diag_free(&d);
	}
	ck_assert_uint_eq(h->nplugins, 0);
	plugin_host_free(h);
}
END_TEST

START_TEST(test_init_failure_is_refused)
{
	struct config_plugin_opt opt = {"fail_init", "1"};
	struct config_plugin cp = entry(plugin_so("probe"), &opt, 1);
	struct plugin_host *h = plugin_host_new(1);
	struct config_diag d = {0};

	ck_assert_ptr_null(plugin_instance(h, &cp, "global", 0, false, &d));
	ck_assert(diag_mentions(&d, "midge_plugin_init failed"));
	config_diag_free(&d);
	plugin_host_free(h);
}
END_TEST

START_TEST(test_instances_are_kept_by_place_and_chained_in_order)
{
	struct config_plugin a = entry(plugin_so("probe"), NULL, 0);
	struct config_plugin b = entry(plugin_so("probe"), NULL, 0);
	struct plugin_host *h = plugin_host_new(1);
	struct config_diag d = {0};
	struct plugin_chain ch = {0};
	struct midge_plugin *p1, *p2, *again;

	p1 = plugin_instance(h, &a, "global", 0, false, &d);
	p2 = plugin_instance(h, &b, "listener 0", 0, false, &d);
	ck_assert_ptr_nonnull(p1);
	ck_assert_ptr_nonnull(p2);
	ck_assert_ptr_ne(p1, p2); /* the same file in two places: two instances */
	ck_assert_str_eq(p1->name, "probe");
	/* A reload finds the instance of the same place again. */
	again = plugin_instance(h, &a, "global", 0, true, &d);
	ck_assert_ptr_eq(again, p1);
	ck_assert_uint_eq(h->nplugins, 2);

	ck_assert_int_eq(plugin_chain_add(&ch, p2), 0);
	ck_assert_int_eq(plugin_chain_add(&ch, p1), 0);
	ck_assert_uint_eq(ch.count[MIDGE_EVT_ACL_CHECK], 2);
	ck_assert_ptr_eq(ch.entries[MIDGE_EVT_ACL_CHECK][0].plugin, p2);
	ck_assert_ptr_eq(ch.entries[MIDGE_EVT_ACL_CHECK][1].plugin, p1);
	ck_assert(chain_has(&ch, MIDGE_EVT_TICK));

	/* Registration is for init only. */
	ck_assert_int_eq(plugin_api_table()->register_event(p1, MIDGE_EVT_TICK,
							    p1->handlers[MIDGE_EVT_TICK].cb, NULL),
			 MIDGE_ERR_STATE);

	/* A commit that no longer uses p2 retires it (never called again). */
	struct midge_plugin *used[] = {p1};
	plugin_host_commit(h, used, 1, true);
	ck_assert(!p1->retired);
	ck_assert(p2->retired);
	ck_assert_uint_eq(h->nactive, 1);
	ck_assert_int_eq(d.nerrors, 0);
	plugin_chain_free(&ch);
	plugin_host_free(h);
}
END_TEST

START_TEST(test_register_rejects_unknown_events)
{
	struct midge_plugin fake = {.in_init = true};
	const struct midge_broker_api *api = plugin_api_table();

	ck_assert_uint_ge(api->size, sizeof(struct midge_broker_api));
	ck_assert_int_eq(api->abi_version, MIDGE_PLUGIN_ABI_VERSION);
	ck_assert_int_eq(api->register_event(&fake, 0, NULL, NULL), MIDGE_ERR_UNSUPPORTED);
	ck_assert_int_eq(api->register_event(&fake, MIDGE_EVT_LIMIT, NULL, NULL),
			 MIDGE_ERR_UNSUPPORTED);
	ck_assert_int_eq(api->register_event(NULL, MIDGE_EVT_TICK, NULL, NULL), MIDGE_ERR_INVAL);
}
END_TEST

START_TEST(test_message_from_plugin_properties)
{
	static const char ct[] = "text/plain";
	struct midge_property props[] = {
		{.identifier = MQTT_PROP_USER_PROPERTY, .name = "k", .name_len = 1, .value = "v",
		 .value_len = 1},
		{.identifier = MQTT_PROP_SESSION_EXPIRY_INTERVAL, .number = 5}, /* not a message's */
		{.identifier = MQTT_PROP_CONTENT_TYPE, .value = ct, .value_len = sizeof(ct) - 1},
		{.identifier = MQTT_PROP_PAYLOAD_FORMAT_INDICATOR, .number = 1},
	};
	struct message *m = plugin_message_new("a/b", 3, "hi", 2, 1, true, props, 4);
	struct mqtt_props raw;
	struct mqtt_prop p;
	uint32_t pos = 0;
	int n = 0;

	ck_assert_ptr_nonnull(m);
	ck_assert_str_eq(m->topic, "a/b");
	ck_assert_uint_eq(m->qos, 1);
	ck_assert(m->retain);
	memset(&raw, 0, sizeof(raw));
	raw.raw.data = m->props;
	raw.raw.len = m->props_len;
	while (mqtt_props_next(&raw, &pos, &p)) {
		switch (n++) {
		case 0:
			ck_assert_int_eq(p.id, MQTT_PROP_USER_PROPERTY);
			ck_assert_int_eq(p.data.len, 1);
			ck_assert_int_eq(p.data2.data[0], 'v');
			break;
		case 1:
			ck_assert_int_eq(p.id, MQTT_PROP_CONTENT_TYPE);
			ck_assert_int_eq(p.data.len, sizeof(ct) - 1);
			break;
		case 2:
			ck_assert_int_eq(p.id, MQTT_PROP_PAYLOAD_FORMAT_INDICATOR);
			ck_assert_int_eq(p.value, 1);
			break;
		default:
			ck_abort_msg("unexpected property %u", p.id);
		}
	}
	ck_assert_int_eq(n, 3);
	message_unref(m);

	/* A value too long for MQTT is refused, not truncated. */
	struct midge_property big = {.identifier = MQTT_PROP_CONTENT_TYPE, .value = ct,
				     .value_len = 70000};
	ck_assert_ptr_null(plugin_message_new("a", 1, NULL, 0, 0, false, &big, 1));
}
END_TEST

Suite *suite_plugin(void)
{
	Suite *s = suite_create("plugin");
	TCase *tc = tcase_create("host");

	tcase_add_test(tc, test_event_names);
	tcase_add_test(tc, test_bad_plugins_are_refused_with_the_reason);
	tcase_add_test(tc, test_init_failure_is_refused);
	tcase_add_test(tc, test_instances_are_kept_by_place_and_chained_in_order);
	tcase_add_test(tc, test_register_rejects_unknown_events);
	tcase_add_test(tc, test_message_from_plugin_properties);
	suite_add_tcase(s, tc);
	return s;
}
