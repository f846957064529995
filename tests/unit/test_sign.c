/* Unit tests of sign.c: the Standard Webhooks test vector, rotation, secrets. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "sign.h"

#define VEC_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define VEC_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define VEC_TS 1614265330
#define VEC_BODY "{\"test\": 2432232314}"
#define VEC_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

static void test_vector(void **state)
{
	struct sign_secret s;
	char out[256];
	assert_int_equal(sign_secret_parse(VEC_SECRET, &s), 0);
	assert_int_equal(s.len, 24);
	assert_int_equal(sign_header(&s, 1, VEC_ID, VEC_TS, VEC_BODY, strlen(VEC_BODY), out, sizeof(out)), 0);
	assert_string_equal(out, VEC_SIG);
	/* Without the prefix, the same key. */
	assert_int_equal(sign_secret_parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", &s), 0);
	assert_int_equal(sign_header(&s, 1, VEC_ID, VEC_TS, VEC_BODY, strlen(VEC_BODY), out, sizeof(out)), 0);
	assert_string_equal(out, VEC_SIG);
	/* Any change to id, timestamp or body changes the signature. */
	assert_int_equal(sign_header(&s, 1, VEC_ID, VEC_TS + 1, VEC_BODY, strlen(VEC_BODY), out, sizeof(out)), 0);
	assert_string_not_equal(out, VEC_SIG);
	assert_int_equal(sign_header(&s, 1, "msg_other", VEC_TS, VEC_BODY, strlen(VEC_BODY), out, sizeof(out)), 0);
	assert_string_not_equal(out, VEC_SIG);
	assert_int_equal(sign_header(&s, 1, VEC_ID, VEC_TS, "{\"test\": 2432232315}", strlen(VEC_BODY), out, sizeof(out)), 0);
	assert_string_not_equal(out, VEC_SIG);
}

static void test_rotation(void **state)
{
	struct sign_secret s[2];
	char out[256];
	assert_int_equal(sign_secret_parse("whsec_c2VjcmV0LW9mLWEtcm90YXRlZC1lbmRwb2ludA==", &s[0]), 0);
	assert_int_equal(s[0].len, strlen("secret-of-a-rotated-endpoint"));
	assert_int_equal(sign_secret_parse(VEC_SECRET, &s[1]), 0);
	assert_int_equal(sign_header(s, 2, VEC_ID, VEC_TS, VEC_BODY, strlen(VEC_BODY), out, sizeof(out)), 0);
	char *sp = strchr(out, ' ');
	assert_non_null(sp);
	assert_string_equal(sp + 1, VEC_SIG);
	assert_memory_equal(out, "v1,", 3);
	assert_int_equal(sign_header(s, 2, VEC_ID, VEC_TS, VEC_BODY, strlen(VEC_BODY), out, 60), -ENOSPC);
}

static void test_bad_secrets(void **state)
{
	struct sign_secret s;
	static const char *const bad[] = { "", "whsec_", "whsec_abc", "whsec_ab!d", "whsec_====", "whsec_a=bc", "not base64 at all",
		/* Found by fuzz_sign: a '=' before the last character is padding only when the last is '=' too. */
		"Awhsec=i", "whsec_AAAAAA=A", "whsec_AAAA==AA" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(sign_secret_parse(bad[i], &s), -EINVAL);
}

static void test_load(void **state)
{
	char path[] = "/tmp/ew-sign-XXXXXX";
	struct sign_secret s[4];
	char err[256];
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	dprintf(fd, "%s\n  whsec_c2VjcmV0LW9mLWEtcm90YXRlZC1lbmRwb2ludA==\n", VEC_SECRET);
	close(fd);
	chmod(path, 0600);
	assert_int_equal(sign_secrets_load(path, s, 4, err, sizeof(err)), 2);
	chmod(path, 0644);
	assert_int_equal(sign_secrets_load(path, s, 4, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "readable by group or others"));
	assert_null(strstr(err, "MfKQ9r8"));
	chmod(path, 0600);
	FILE *f = fopen(path, "w");
	fprintf(f, "whsec_!!!!\n");
	fclose(f);
	assert_int_equal(sign_secrets_load(path, s, 4, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not whsec_"));
	assert_null(strstr(err, "!!!!"));
	f = fopen(path, "w");
	fclose(f);
	assert_int_equal(sign_secrets_load(path, s, 4, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "no secret"));
	unlink(path);
	assert_int_equal(sign_secrets_load(path, s, 4, err, sizeof(err)), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vector),
		cmocka_unit_test(test_rotation),
		cmocka_unit_test(test_bad_secrets),
		cmocka_unit_test(test_load),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
