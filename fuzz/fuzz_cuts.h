/* The cut points of the targets that feed their input in pieces, read from the input's front. */
#ifndef EW_FUZZ_CUTS_H
#define EW_FUZZ_CUTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FUZZ_CUTS_MAX 7

/*
 * Takes a count n (one byte, up to FUZZ_CUTS_MAX) and n cut points (two
 * bytes each) off the front of *data; they are sorted and fall in [0, len],
 * len being what is left, and cuts[n] = len. Returns false when the input is
 * too short for them.
 */
static inline bool fuzz_cuts(const uint8_t **data, size_t *size, size_t cuts[FUZZ_CUTS_MAX + 1], size_t *ret_n)
{
	if (*size < 1)
		return false;
	size_t n = **data % (FUZZ_CUTS_MAX + 1);
	if (*size < 1 + n * 2)
		return false;
	const uint8_t *c = *data + 1;
	*size -= 1;
	size_t len = *size - n * 2;
	for (size_t i = 0; i < n; i++) {
		cuts[i] = ((size_t)c[2 * i] << 8 | c[2 * i + 1]) % (len + 1);
		for (size_t k = i; k > 0 && cuts[k - 1] > cuts[k]; k--) {
			size_t t = cuts[k];
			cuts[k] = cuts[k - 1];
			cuts[k - 1] = t;
		}
	}
	cuts[n] = len;
	*data = c + n * 2;
	*size = len;
	*ret_n = n;
	return true;
}

#endif
