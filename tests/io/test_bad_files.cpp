// Handcrafted broken checkpoint files: each gives a clear error naming the file and the problem
// (in the spirit of llama.cpp's test-gguf HANDCRAFTED_* cases).
#include "golden.h"

#include "core/core.h"

#include <ATen/ATen.h>

#include <fstream>

namespace {

using wan::io::TensorStore;

std::string write_file(const std::string& path, const std::string& bytes) {
    std::ofstream f(path, std::ios::binary);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return path;
}

std::string safetensors_bytes(const std::string& header_json, size_t data_bytes, int64_t header_len_override = -1) {
    std::string out;
    uint64_t len = header_len_override >= 0 ? static_cast<uint64_t>(header_len_override) : header_json.size();
    out.append(reinterpret_cast<const char*>(&len), 8);
    out += header_json;
    out.append(data_bytes, '\0');
    return out;
}

std::string read_all(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
}

// Expects opening `path` to throw a wan::Error whose message contains every fragment.
void expect_error(const std::string& path, std::initializer_list<const char*> fragments) {
    try {
        TensorStore::open(path);
        FAIL() << "opening " << path << " should have failed";
    } catch (const wan::Error& e) {
        std::string msg = e.what();
        EXPECT_NE(msg.find(path), std::string::npos) << "message does not name the file: " << msg;
        for (const char* f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << "missing '" << f << "' in: " << msg;
    }
}

class BadFiles : public ::testing::Test {
protected:
    std::string dir = wan::test::make_temp_dir("bad");
};

TEST_F(BadFiles, HeaderLengthPastEnd) {
    auto p = write_file(dir + "/a.safetensors", safetensors_bytes("{}", 0, 4096));
    expect_error(p, {"header length", "past the end"});
}

TEST_F(BadFiles, TruncatedFile) {
    auto p = write_file(dir + "/trunc.safetensors", std::string("\x10\x00\x00", 3));
    expect_error(p, {"truncated"});
}

TEST_F(BadFiles, OffsetsOutOfRange) {
    auto p = write_file(dir + "/b.safetensors",
                        safetensors_bytes(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8));
    expect_error(p, {"'w'", "out of range"});
}

TEST_F(BadFiles, OverlappingOffsets) {
    auto p = write_file(dir + "/c.safetensors",
                        safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                          R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12));
    expect_error(p, {"overlap"});
}

TEST_F(BadFiles, SizeNotMatchingDtypeTimesShape) {
    auto p = write_file(dir + "/d.safetensors",
                        safetensors_bytes(R"({"w":{"dtype":"F16","shape":[3],"data_offsets":[0,8]}})", 8));
    expect_error(p, {"'w'", "needs 6"});
}

TEST_F(BadFiles, UnknownDtype) {
    auto p = write_file(dir + "/e.safetensors",
                        safetensors_bytes(R"({"w":{"dtype":"Q4_K","shape":[2],"data_offsets":[0,2]}})", 2));
    expect_error(p, {"unknown dtype 'Q4_K'"});
}

TEST_F(BadFiles, DuplicateNames) {
    // JSON objects cannot repeat a key meaningfully, so duplicates are checked across the shards of an index.
    wan::io::save_safetensors(dir + "/s1.safetensors", {{"w", at::ones({2})}});
    wan::io::save_safetensors(dir + "/s2.safetensors", {{"w", at::ones({2})}});
    auto idx = write_file(dir + "/m.safetensors.index.json",
                          R"({"metadata":{},"weight_map":{"w":"s1.safetensors","x":"s2.safetensors"}})");
    try {
        TensorStore::open(idx);
        FAIL() << "duplicate name not detected";
    } catch (const wan::Error& e) {
        EXPECT_NE(std::string(e.what()).find("duplicate tensor name 'w'"), std::string::npos) << e.what();
    }
}

TEST_F(BadFiles, IndexNamesMissingShard) {
    wan::io::save_safetensors(dir + "/s1.safetensors", {{"w", at::ones({2})}});
    auto idx = write_file(dir + "/n.safetensors.index.json",
                          R"({"weight_map":{"w":"s1.safetensors","v":"model-00002-of-00002.safetensors"}})");
    try {
        TensorStore::open(idx);
        FAIL() << "missing shard not detected";
    } catch (const wan::Error& e) {
        std::string msg = e.what();
        EXPECT_NE(msg.find(idx), std::string::npos) << msg;
        EXPECT_NE(msg.find("model-00002-of-00002.safetensors"), std::string::npos) << msg;
        EXPECT_NE(msg.find("missing"), std::string::npos) << msg;
    }
}

TEST_F(BadFiles, PthZipEntryMissing) {
    // A valid archive whose storage entry name is changed: the pickle names data/0, the zip holds data/X.
    wan::io::save_pth(dir + "/good.pth", {{"w", at::arange(4, at::kFloat)}});
    std::string bytes = read_all(dir + "/good.pth");
    size_t pos = 0;
    int replaced = 0;
    while ((pos = bytes.find("good/data/0", pos)) != std::string::npos) {
        bytes[pos + 10] = 'X';
        ++replaced;
        pos += 11;
    }
    ASSERT_EQ(replaced, 2);  // local header + central directory
    auto p = write_file(dir + "/noentry.pth", bytes);
    expect_error(p, {"zip entry", "missing"});
}

TEST_F(BadFiles, PthTruncated) {
    wan::io::save_pth(dir + "/good.pth", {{"w", at::arange(64, at::kFloat)}});
    std::string bytes = read_all(dir + "/good.pth");
    auto p = write_file(dir + "/cut.pth", bytes.substr(0, bytes.size() / 2));
    expect_error(p, {"truncated"});
}

TEST_F(BadFiles, PickleGlobalNotWhitelisted) {
    // Replace the OrderedDict global by os.system (same length keeps the zip offsets valid).
    wan::io::save_pth(dir + "/good.pth", {{"w", at::arange(4, at::kFloat)}});
    std::string bytes = read_all(dir + "/good.pth");
    const std::string from = "ccollections\nOrderedDict\n";
    const std::string to = "cposix\nsystem\n\n\n\n\n\n\n\n\n\n\n\n";
    ASSERT_EQ(from.size(), to.size());
    auto pos = bytes.find(from);
    ASSERT_NE(pos, std::string::npos);
    bytes.replace(pos, from.size(), to);
    auto p = write_file(dir + "/evil.pth", bytes);
    expect_error(p, {"'posix.system' is not allowed"});
}

TEST_F(BadFiles, MissingFileNamed) {
    expect_error(dir + "/nope.safetensors", {"cannot open"});
}

TEST(CheckpointDir, ListsEveryMissingFile) {
    std::string dir = wan::test::make_temp_dir("ckpt");
    try {
        wan::io::CheckpointDir::locate(dir);
        FAIL();
    } catch (const wan::Error& e) {
        std::string msg = e.what();
        for (const char* f : {"config.json", "diffusion_pytorch_model.safetensors", "models_t5_umt5-xxl-enc-bf16.pth",
                              "Wan2.1_VAE.pth", "google/umt5-xxl/spiece.model"})
            EXPECT_NE(msg.find(f), std::string::npos) << f << " not named in: " << msg;
    }
}

TEST(CheckpointDir, TinyCheckpointAndConfig) {
    auto c = wan::io::CheckpointDir::locate(wan::test::tiny_ckpt_dir());
    auto cfg = c.config();
    EXPECT_EQ(cfg.dim, 128);
    EXPECT_EQ(cfg.text_dim, 64);
    EXPECT_EQ(cfg.head_dim(), 32);
    EXPECT_EQ(cfg.variant(), "custom (dim 128, 2 layers)");
    wan::io::WanConfig real = wan::io::WanConfig::from_json_string(
        R"({"_class_name":"WanModel","dim":1536,"eps":1e-06,"ffn_dim":8960,"freq_dim":256,"in_dim":16,)"
        R"("model_type":"t2v","num_heads":12,"num_layers":30,"out_dim":16,"text_len":512})", "1.3B config");
    EXPECT_EQ(real.variant(), "1.3B");
    EXPECT_EQ(real.text_dim, 4096);
}

TEST(WanConfig, BadFieldsNamed) {
    auto expect_msg = [](const std::string& json, const char* fragment) {
        try {
            wan::io::WanConfig::from_json_string(json, "cfg.json");
            FAIL() << json;
        } catch (const wan::Error& e) {
            EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
            EXPECT_NE(std::string(e.what()).find("cfg.json"), std::string::npos) << e.what();
        }
    };
    expect_msg(R"({"dim":100,"ffn_dim":8,"num_heads":3,"num_layers":1})", "not divisible by num_heads");
    expect_msg(R"({"dim":1536,"ffn_dim":8960,"num_layers":30})", "missing field \"num_heads\"");
    expect_msg(R"({"dim":"big","ffn_dim":8960,"num_heads":12,"num_layers":30})", "\"dim\" must be an integer");
    expect_msg(R"({"dim":1536,"ffn_dim":8960,"num_heads":12,"num_layers":30,"model_type":"i2v"})", "not supported");
    expect_msg("{not json", "not valid JSON");
}

}  // namespace
