// TEST-ONLY fault injection. Production code calls these hooks at the few points where tests need a rank
// to fail; they do nothing unless the test variables below are set (the e2e tests set them under mpirun).
// Nothing else in the engine reads these variables.
//
//   WAN_TEST_FAIL_RANK=r WAN_TEST_FAIL_STEP=s   rank r throws at denoising step s of its first job only, so a
//                                               test can check that the job fails cleanly on every rank and
//                                               the next job succeeds (tests/e2e: e2e_rank_failure_np2).
//   WAN_TEST_FAIL_BLOCK_RANK=r WAN_TEST_FAIL_BLOCK=b [WAN_TEST_FAIL_BLOCK_TIME=n]
//                                               rank r throws right after DiT block b of its n-th forward (default
//                                               the first) only, so its peers are left in the next block's
//                                               collectives (tests/e2e: e2e_block_failure_*, Note [Failure notices]).
//   WAN_TEST_STOP_RANK=r WAN_TEST_STOP_STEP=s   rank r stops itself with SIGSTOP (as `kill -STOP` would) at the
//                                               start of step s, so its peers wait in the step's collectives
//                                               (tests/e2e: e2e_stopped_rank_np2, --collective-timeout).
//   WAN_TEST_FAIL_VIDEO_WRITE=1                 writing the video fails (as on a full disk) after every finished
//                                               generation (tests/e2e: e2e_video_write_fails_keeps_latent).
//   WAN_TEST_FAIL_LOAD_RANK=r WAN_TEST_FAIL_LOAD_TENSOR=n
//                                               rank r throws at the n-th tensor (counting from 1 over every
//                                               component) of its model load, so a test can check that the load
//                                               fails on every rank, naming rank r's reason (e2e_load_failure_np2).
//   WAN_TEST_LOAD_DELAY_MS=n                    every tensor read while the models load takes n ms longer, so
//                                               that loading the tiny checkpoint lasts long enough to watch and
//                                               cancel (tests: pipeline load, e2e_cancel_load_np2, the window).
#pragma once

namespace wan::test_hooks {

/// Throws wan::Error("injected failure at step N …") on the configured rank and step, once per process.
void maybe_fail_at_step(int rank, int step);
/// Throws wan::Error("injected failure after DiT block N …") on the configured rank, block and time, once per process.
void maybe_fail_after_block(int rank, long long block);
/// Stops this process (SIGSTOP) on the configured rank and step; a peer's deadline then ends the job.
void maybe_stop_at_step(int rank, int step);
/// Throws wan::Error("… no space left on device (injected …)") when WAN_TEST_FAIL_VIDEO_WRITE is set.
void maybe_fail_video_write();
/// Throws wan::Error("injected failure at tensor N of the load …") on the configured rank and tensor, once.
void maybe_fail_load(int rank, long long tensor);
/// Sleeps WAN_TEST_LOAD_DELAY_MS milliseconds when it is set (once per tensor read while loading).
void maybe_delay_load();

}  // namespace wan::test_hooks
