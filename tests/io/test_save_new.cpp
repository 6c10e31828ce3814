// io::save_safetensors_new (--save-latents, the latent kept after a failed video write): never replaces a
// file, leaves no temporary file behind, and writes what save_safetensors writes.
#include "error_of.h"
#include "file_bytes.h"
#include "golden.h"

#include "core/core.h"
#include "io/save_new.h"

#include <ATen/ATen.h>

#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

namespace {

using wan::io::TensorStore;
using wan::test::error_of;
using wan::test::file_bytes;

std::vector<std::string> list_dir(const std::string& dir) {
    std::vector<std::string> names;
    if (DIR* d = ::opendir(dir.c_str())) {
        while (dirent* e = ::readdir(d))
            if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") names.push_back(e->d_name);
        ::closedir(d);
    }
    return names;
}

class SaveNew : public ::testing::Test {
protected:
    std::string dir = wan::test::make_temp_dir("save_new");
    wan::io::NamedTensors tensors{{"latent", at::arange(6, at::kFloat).reshape({2, 3})}};
};

TEST_F(SaveNew, WritesANewFileAndNothingElse) {
    const std::string path = dir + "/new.safetensors";
    wan::io::save_safetensors_new(path, tensors, {{"seed_used", "7"}});
    TensorStore store = TensorStore::open(path);
    EXPECT_TRUE(at::equal(store.load("latent"), tensors[0].second));
    EXPECT_EQ(store.metadata().at("seed_used"), "7");
    EXPECT_EQ(list_dir(dir), std::vector<std::string>{"new.safetensors"}) << "a temporary file was left behind";
}

TEST_F(SaveNew, RefusesAnExistingFileAndLeavesItAsItWas) {
    const std::string path = dir + "/existing.safetensors";
    std::ofstream(path) << "keep";
    const std::string msg = error_of([&] { wan::io::save_safetensors_new(path, tensors); });
    EXPECT_NE(msg.find("'" + path + "' already exists; WanStudio never overwrites outputs"), std::string::npos) << msg;
    EXPECT_EQ(file_bytes(path), "keep");
    EXPECT_EQ(list_dir(dir), std::vector<std::string>{"existing.safetensors"});
}

TEST_F(SaveNew, RefusesADanglingSymbolicLinkAndDoesNotCreateItsTarget) {
    const std::string path = dir + "/link.safetensors";
    const std::string target = dir + "/target.safetensors";
    ASSERT_EQ(::symlink(target.c_str(), path.c_str()), 0);
    const std::string msg = error_of([&] { wan::io::save_safetensors_new(path, tensors); });
    EXPECT_NE(msg.find("already exists"), std::string::npos) << msg;
    EXPECT_NE(::access(target.c_str(), F_OK), 0) << "the link was followed";
}

TEST_F(SaveNew, AFolderThatIsGoneIsNamedInTheError) {
    const std::string path = dir + "/gone/out.safetensors";
    const std::string msg = error_of([&] { wan::io::save_safetensors_new(path, tensors); });
    EXPECT_NE(msg.find(dir + "/gone/out.safetensors"), std::string::npos) << msg;
    EXPECT_NE(msg.find("cannot create"), std::string::npos) << msg;
}

TEST(SaveSafetensors, StillReplacesAndLeavesNoTemporaryFile) {
    // The ordinary writer (checkpoints, test data) keeps replacing, now also through an exclusive temporary file.
    const std::string dir = wan::test::make_temp_dir("save_replace");
    const std::string path = dir + "/w.safetensors";
    wan::io::save_safetensors(path, {{"w", at::zeros({2})}});
    wan::io::save_safetensors(path, {{"w", at::ones({2})}});
    EXPECT_TRUE(at::equal(TensorStore::open(path).load("w"), at::ones({2})));
    EXPECT_EQ(list_dir(dir), std::vector<std::string>{"w.safetensors"});
}

}  // namespace
