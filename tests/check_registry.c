/* SPDX-License-Identifier: MIT */
/* White-box tests of the daemon's owner table: numbering, and forgetting a
 * connection's session owners and nothing else. */
#include <check.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "daemon.h"

/* Owners are (uid, label, connection); connection 0 is not a session. */
static uint32_t get(uid_t uid, const char *label, uint64_t conn)
{
	int64_t id = potad__owner_get(uid, label, conn);

	ck_assert_msg(id >= 0,
		      "potad__owner_get(%u, %s, %" PRIu64 "): %" PRId64,
		      (unsigned)uid, label, conn, id);
	return (uint32_t)id;
}

static void expect_owner(uint32_t id, uid_t uid, const char *label,
			 uint64_t conn)
{
	const struct powner *o = potad__owner(id);

	ck_assert_msg(o != NULL, "owner %u is gone", id);
	ck_assert_uint_eq(o->uid, uid);
	ck_assert_str_eq(o->label, label);
	ck_assert_uint_eq(o->conn, conn);
}

START_TEST(same_owner_same_number)
{
	uint32_t a = get(1000, "job", 0), b = get(1000, "job", 7);

	ck_assert_uint_eq(get(1000, "job", 0), a);
	ck_assert_uint_eq(get(1000, "job", 7), b);
	ck_assert_uint_ne(a, b);
	ck_assert_uint_ne(get(1001, "job", 0), a);
	ck_assert_uint_ne(get(1000, "other", 0), a);
	expect_owner(a, 1000, "job", 0);
	expect_owner(b, 1000, "job", 7);
	ck_assert_ptr_null(potad__owner(1u << 30));
	potad__owner_drop_conn(7);
	ck_assert_ptr_null(potad__owner(b));
	expect_owner(a, 1000, "job", 0);
}
END_TEST

enum { PER = 40 }; /* owners per connection, and plain ones */

/* Connection conn closes: every one of its owners ids[0..PER) is gone. */
static void leave(uint64_t conn, const uint32_t *ids)
{
	potad__owner_drop_conn(conn);
	for (unsigned j = 0; j < PER; j++)
		ck_assert_msg(potad__owner(ids[j]) == NULL,
			      "owner %u of closed connection %" PRIu64
			      " is still there",
			      j, conn);
}

/* The owners no connection holds are all still there. */
static void expect_plain(const uint32_t *plain)
{
	char label[32];

	for (unsigned j = 0; j < PER; j++) {
		snprintf(label, sizeof(label), "plain-%u", j);
		expect_owner(plain[j], 500, label, 0);
	}
}

/*
 * Connections interleave their owners, leave in a random order, and later
 * connections reuse the numbers they leave: each leaving forgets all of
 * its own owners and no one else's.
 */
START_TEST(drop_connection_only)
{
	enum { SLOTS = 64, ROUNDS = 6 };
	static uint32_t id[SLOTS][PER];
	static uint64_t conn[SLOTS]; /* 0: the slot has no connection */
	uint64_t next = 1, x = 42;
	uint32_t plain[PER];
	char label[32];

	for (unsigned j = 0; j < PER; j++) {
		snprintf(label, sizeof(label), "plain-%u", j);
		plain[j] = get(500, label, 0);
	}
	for (unsigned round = 0; round < ROUNDS; round++) {
		bool fresh[SLOTS] = { false };

		/* Each empty slot gets a new connection, and the new ones
		 * make their owners interleaved. */
		for (unsigned c = 0; c < SLOTS; c++)
			if (!conn[c]) {
				conn[c] = next++;
				fresh[c] = true;
			}
		for (unsigned j = 0; j < PER; j++)
			for (unsigned c = 0; c < SLOTS; c++) {
				if (!fresh[c])
					continue;
				snprintf(label, sizeof(label), "c%u-%u", c, j);
				id[c][j] = get(100 + c, label, conn[c]);
			}
		/* About half of them leave, in a random order. */
		for (unsigned k = 0; k < SLOTS / 2; k++) {
			unsigned c;

			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			c = (unsigned)(x % SLOTS);
			if (!conn[c])
				continue;
			leave(conn[c], id[c]);
			conn[c] = 0;
		}
		/* The others are whole, and so are the plain owners. */
		for (unsigned c = 0; c < SLOTS; c++) {
			if (!conn[c])
				continue;
			for (unsigned j = 0; j < PER; j++) {
				snprintf(label, sizeof(label), "c%u-%u", c, j);
				expect_owner(id[c][j], 100 + c, label, conn[c]);
			}
		}
		expect_plain(plain);
	}
	for (unsigned c = 0; c < SLOTS; c++)
		if (conn[c])
			leave(conn[c], id[c]);
	expect_plain(plain);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("registry");
	TCase *tc = tcase_create("owners");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, same_owner_same_number);
	tcase_add_test(tc, drop_connection_only);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
