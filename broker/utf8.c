/*
 * utf8.c: validation of MQTT UTF-8 encoded strings (MQTT 5.0 section 1.5.4,
 * 3.1.1 section 1.5.3): well-formed per RFC 3629, shortest form only, no
 * surrogate halves, nothing above U+10FFFF, and never U+0000.
 */
#include "packet.h"

bool mqtt_utf8_valid(const uint8_t *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint8_t c = s[i];
		uint32_t cp;
		size_t n;

		if (c < 0x80) {
			if (c == 0)
				return false;
			i++;
			continue;
		}
		if ((c & 0xE0) == 0xC0) {
			n = 1;
			cp = c & 0x1F;
		} else if ((c & 0xF0) == 0xE0) {
			n = 2;
			cp = c & 0x0F;
		} else if ((c & 0xF8) == 0xF0) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (len - i <= n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			uint8_t cc = s[i + k];
			if ((cc & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (cc & 0x3F);
		}
		/* Overlong forms, surrogates and out-of-range code points. */
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000))
			return false;
		if (cp >= 0xD800 && cp <= 0xDFFF)
			return false;
		if (cp > 0x10FFFF)
			return false;
		i += n + 1;
	}
	return true;
}
