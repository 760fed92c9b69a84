/* SPDX-License-Identifier: GPL-2.0 */
/*
 * unittest.h: the results of BPF unit tests written in Cilium's
 * pktgen/setup/check convention, for programs that do not use Cilium's own
 * headers. A check program writes a protobuf SuiteResult (Cilium's
 * bpf/tests/bpftest/trf.proto) into element 0 of suite_result_map and
 * returns its status; `waggle test` decodes it.
 *
 *	UT_INIT();                        at the top of a check program
 *	UT_BEGIN("name");                 opens a case (a TestResult record)
 *	UT_ASSERT(cond, "fmt %d", arg);   logs and fails the case if !cond
 *	UT_END();                         closes it
 *	return UT_DONE();                 the check's own status
 *
 * Messages are prefixed with "file:line: ". Every write is at a constant
 * offset on each path, so the verifier accepts the stores into the map
 * value without bounds checks.
 */
#pragma once

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* What check programs return, and what records hold (TestStatus). */
#define TEST_ERROR 100
#define TEST_PASS 101
#define TEST_FAIL 102
#define TEST_SKIP 103

#define UT_RESULT_SIZE 4096

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__uint(value_size, UT_RESULT_SIZE);
} suite_result_map SEC(".maps");

/* Protobuf tags (field number << 3 | wire type) of the fields written. */
#define UT_PB_RESULT 0x0a	/* SuiteResult.results: bytes */
#define UT_PB_SUITE_LOG 0x12	/* SuiteResult.suite_log: bytes */
#define UT_PB_NAME 0x0a		/* TestResult.name: bytes */
#define UT_PB_STATUS 0x10	/* TestResult.status: varint */
#define UT_PB_TEST_LOG 0x1a	/* TestResult.test_log: bytes */
#define UT_PB_FMT 0x0a		/* Log.fmt: bytes */
#define UT_PB_ARG 0x11		/* Log.args: fixed64 */

/* A length as a two-byte varint (up to 16,383), so that a record's length
 * can be written once its contents are. */
#define UT_LEN2(p, n)                                                        \
	do {                                                                 \
		(p)[0] = ((n) & 0x7f) | 0x80;                                \
		(p)[1] = (n) >> 7;                                           \
	} while (0)

#define UT_STR2(x) #x
#define UT_STR(x) UT_STR2(x)

#define UT_INIT()                                                            \
	__u8 *ut_buf;                                                        \
	__u32 ut_off = 0, ut_rec = 0, ut_status = 0;                         \
	int ut_result = TEST_PASS;                                           \
	{                                                                    \
		__u32 ut_key = 0;                                            \
		ut_buf = bpf_map_lookup_elem(&suite_result_map, &ut_key);    \
		if (!ut_buf)                                                 \
			return TEST_ERROR;                                   \
	}

/* UT_BEGIN writes a record's tag, leaves two bytes for its length, and
 * writes its name and a PASS status. */
#define UT_BEGIN(name)                                                       \
	do {                                                                 \
		static const char ut_name[] = name;                          \
		ut_buf[ut_off] = UT_PB_RESULT;                               \
		ut_rec = ut_off + 1;                                         \
		ut_off += 3;                                                 \
		ut_buf[ut_off] = UT_PB_NAME;                                 \
		ut_buf[ut_off + 1] = sizeof(ut_name) - 1;                    \
		__builtin_memcpy(ut_buf + ut_off + 2, ut_name,               \
				 sizeof(ut_name) - 1);                       \
		ut_off += 2 + sizeof(ut_name) - 1;                           \
		ut_buf[ut_off] = UT_PB_STATUS;                               \
		ut_buf[ut_off + 1] = TEST_PASS;                              \
		ut_status = ut_off + 1;                                      \
		ut_off += 2;                                                 \
	} while (0)

#define UT_END()                                                             \
	do {                                                                 \
		UT_LEN2(ut_buf + ut_rec, ut_off - ut_rec - 2);               \
		ut_rec = 0;                                                  \
	} while (0)

/* UT_LOG writes a Log with one argument, in the open record or, outside
 * records, in the suite's logs. */
#define UT_LOG(fmt, arg)                                                     \
	do {                                                                 \
		static const char ut_fmt[] =                                 \
			__FILE__ ":" UT_STR(__LINE__) ": " fmt;              \
		ut_buf[ut_off] = ut_rec ? UT_PB_TEST_LOG : UT_PB_SUITE_LOG;  \
		UT_LEN2(ut_buf + ut_off + 1, 3 + sizeof(ut_fmt) + 9);        \
		ut_buf[ut_off + 3] = UT_PB_FMT;                              \
		UT_LEN2(ut_buf + ut_off + 4, sizeof(ut_fmt));                \
		__builtin_memcpy(ut_buf + ut_off + 6, ut_fmt, sizeof(ut_fmt)); \
		ut_off += 6 + sizeof(ut_fmt);                                \
		ut_buf[ut_off] = UT_PB_ARG;                                  \
		*(__u64 *)(ut_buf + ut_off + 1) = (__u64)(arg);              \
		ut_off += 9;                                                 \
	} while (0)

#define UT_ASSERT(cond, fmt, arg)                                            \
	do {                                                                 \
		if (!(cond)) {                                               \
			UT_LOG(fmt, arg);                                    \
			if (ut_rec)                                          \
				ut_buf[ut_status] = TEST_FAIL;               \
			else                                                 \
				ut_result = TEST_FAIL;                       \
		}                                                            \
	} while (0)

#define UT_DONE() ut_result
