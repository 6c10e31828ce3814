// `wanstudio --inspect` on a checkpoint folder where one file is hostile (the tiny checkpoint with that file
// replaced): the process must end with the ordinary failure code 1 (never a signal) and a message naming the
// file and what is wrong. The binary comes from $WANSTUDIO (set by CMake).
#include "golden.h"
#include "hostile_files.h"

#include <ATen/ATen.h>

#include <cstdlib>
#include <sys/wait.h>

namespace {

using namespace wan::test::hostile;

struct InspectRun {
    int wait_status = 0;
    std::string output;
};

InspectRun inspect(const std::string& dir) {
    const char* bin = std::getenv("WANSTUDIO");
    EXPECT_TRUE(bin && *bin) << "WANSTUDIO is not set";
    const std::string log = dir + "/inspect.log";
    // `exec` keeps the shell out of the way, so a signal reaches the wait status as a signal.
    const std::string cmd = std::string("exec '") + (bin ? bin : "wanstudio") + "' --inspect '" + dir + "' >'" + log + "' 2>&1";
    InspectRun r;
    r.wait_status = std::system(cmd.c_str());
    r.output = read_all(log);
    return r;
}

void expect_clean_failure(const std::string& name, const std::string& bytes, const std::string& fragment) {
    const std::string dir = tiny_ckpt_with(name, bytes);
    ASSERT_FALSE(dir.empty());
    InspectRun r = inspect(dir);
    ASSERT_FALSE(WIFSIGNALED(r.wait_status)) << "killed by signal " << WTERMSIG(r.wait_status) << "\n" << r.output;
    ASSERT_TRUE(WIFEXITED(r.wait_status));
    EXPECT_EQ(WEXITSTATUS(r.wait_status), 1) << r.output;
    EXPECT_NE(r.output.find(dir + "/" + name), std::string::npos) << "message does not name the file:\n" << r.output;
    EXPECT_NE(r.output.find(fragment), std::string::npos) << "missing '" << fragment << "' in:\n" << r.output;
}

TEST(HostileInspect, TinyCheckpointItselfIsFine) {
    // The harness: the same folder of links with an unchanged copy passes, so the failures below are the files'.
    const std::string dir = tiny_ckpt_with("config.json", read_all(wan::test::tiny_ckpt_dir() + "/config.json"));
    InspectRun r = inspect(dir);
    ASSERT_TRUE(WIFEXITED(r.wait_status)) << r.output;
    EXPECT_EQ(WEXITSTATUS(r.wait_status), 0) << r.output;
}

TEST(HostileInspect, DitShapeWhoseByteCountWraps) {
    expect_clean_failure("diffusion_pytorch_model.safetensors", safetensors_wrapping_shape(),
                         "more bytes than 64 bits can count");
}

TEST(HostileInspect, T5PickleNested200000Deep) {
    expect_clean_failure("models_t5_umt5-xxl-enc-bf16.pth", pth_with_pickle(nested_lists_pickle(200000)),
                         "nests objects deeper than");
}

TEST(HostileInspect, T5PickleFiveMillionLists) {
    expect_clean_failure("models_t5_umt5-xxl-enc-bf16.pth", pth_with_pickle(many_lists_pickle(5000000)),
                         "more than 1000000 objects");
}

TEST(HostileInspect, ConfigNested300000Deep) {
    expect_clean_failure("config.json", nested_json_config(300000), "JSON nests deeper than 64 levels");
}

TEST(HostileInspect, VaeZip64LocatorPastTheEnd) {
    const std::string tmp = wan::test::make_temp_dir("z64");
    wan::io::save_pth(tmp + "/Wan2.1_VAE.pth", {{"w", at::arange(4, at::kFloat)}});
    expect_clean_failure("Wan2.1_VAE.pth", zip64_locator_past_end(read_all(tmp + "/Wan2.1_VAE.pth")),
                         "zip64 locator points at offset 18446744073709551608");
}

}  // namespace
