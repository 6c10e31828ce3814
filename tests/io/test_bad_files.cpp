// Handcrafted broken checkpoint files: each gives a clear error naming the file and the problem
// (in the spirit of llama.cpp's test-gguf HANDCRAFTED_* cases).
#include "golden.h"
#include "hostile_files.h"

#include "core/core.h"

#include <ATen/ATen.h>

#include <fstream>
#include <string>
#include <vector>

namespace {

using wan::io::TensorStore;

using namespace wan::test::hostile;

// Expects opening `path` to throw a wan::Error whose message contains every fragment.
void expect_error(const std::string& path, const std::vector<const char*>& fragments) {
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

// A safetensors file with a broken header, and what the error must say besides the file's name.
struct BadHeader {
    const char* name;  // the case's test name and file name
    std::string bytes;
    std::vector<const char*> fragments;
};

class BadHeaders : public ::testing::TestWithParam<BadHeader> {};

TEST_P(BadHeaders, ErrorNamesFileAndProblem) {
    const BadHeader& c = GetParam();
    const std::string dir = wan::test::make_temp_dir("bad");
    expect_error(write_file(dir + "/" + c.name + ".safetensors", c.bytes), c.fragments);
}

INSTANTIATE_TEST_SUITE_P(
    BadFiles, BadHeaders,
    ::testing::Values(
        BadHeader{"HeaderLengthPastEnd", safetensors_bytes("{}", 0, 4096), {"header length", "past the end"}},
        BadHeader{"TruncatedFile", std::string("\x10\x00\x00", 3), {"truncated"}},
        BadHeader{"OffsetsOutOfRange",
                  safetensors_bytes(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8),
                  {"'w'", "out of range"}},
        BadHeader{"OverlappingOffsets",
                  safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                    R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12),
                  {"overlap"}},
        BadHeader{"SizeNotMatchingDtypeTimesShape",
                  safetensors_bytes(R"({"w":{"dtype":"F16","shape":[3],"data_offsets":[0,8]}})", 8),
                  {"'w'", "needs 6"}},
        BadHeader{"UnknownDtype",
                  safetensors_bytes(R"({"w":{"dtype":"Q4_K","shape":[2],"data_offsets":[0,2]}})", 2),
                  {"unknown dtype 'Q4_K'"}}),
    [](const ::testing::TestParamInfo<BadHeader>& info) { return std::string(info.param.name); });

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

// ---- hostile files: sizes that wrap, structures that nest, offsets past the end -------------------------

TEST_F(BadFiles, SafetensorsShapeWhoseByteCountWraps) {
    auto p = write_file(dir + "/wrap.safetensors", safetensors_wrapping_shape());
    expect_error(p, {"'w'", "more bytes than 64 bits can count"});
}

TEST_F(BadFiles, SafetensorsEmptyShapeWithHugeSizes) {
    // Zero elements, so no bytes; but the contiguous strides of the other sizes overflow.
    auto p = write_file(dir + "/empty.safetensors",
                        safetensors_bytes(R"({"w":{"dtype":"F32","shape":[0,4611686018427387904,4],"data_offsets":[0,0]}})", 0));
    expect_error(p, {"'w'", "too large for 64-bit strides"});
}

TEST_F(BadFiles, PthStorageByteCountWraps) {
    // 2^62 float elements = 2^64 bytes.
    auto p = write_file(dir + "/storage.pth", pth_with_pickle(state_dict_pickle(int64_t(1) << 62, {4}, {1}), {std::string(16, '\0')}));
    expect_error(p, {"'w'", "no valid byte size"});
}

TEST_F(BadFiles, PthStridesThatWrap) {
    // (2-1) × 2^62 + (2-1) × 2^62 = 2^63: the last element's index wraps negative and would pass "< numel".
    auto p = write_file(dir + "/stride.pth",
                        pth_with_pickle(state_dict_pickle(4, {2, 2}, {int64_t(1) << 62, int64_t(1) << 62}),
                                        {std::string(16, '\0')}));
    expect_error(p, {"'w'", "reaches past its storage"});
}

TEST_F(BadFiles, PthNegativeStorageSize) {
    auto p = write_file(dir + "/neg.pth", pth_with_pickle(state_dict_pickle(-4, {4}, {1}), {std::string(16, '\0')}));
    expect_error(p, {"'w'", "no valid byte size"});
}

TEST_F(BadFiles, PthValidHandcraftedStateDictStillReads) {
    // The builders above make files the reader accepts when the numbers are sane.
    std::string data(16, '\0');
    const float v[4] = {1, 2, 3, 4};
    std::memcpy(&data[0], v, 16);
    auto p = write_file(dir + "/ok.pth", pth_with_pickle(state_dict_pickle(4, {2, 2}, {1, 2}), {data}));
    auto st = wan::io::TensorStore::open(p);
    EXPECT_EQ(st.get("w")[0][1].item<float>(), 3.0f);  // stride (1, 2): element [0][1] is storage[2]
}

TEST_F(BadFiles, PickleNestedTwoHundredThousandLists) {
    // Used to crash (stack overflow in the recursive destructor), so the error must come back at all.
    auto p = write_file(dir + "/deep.pth", pth_with_pickle(nested_lists_pickle(200000)));
    expect_error(p, {"nests objects deeper than 100 levels"});
}

TEST_F(BadFiles, PickleFiveMillionEmptyLists) {
    // A 5 MB file that used to build 5,000,000 objects (1.1 GB) before failing: capped at a million.
    auto p = write_file(dir + "/many.pth", pth_with_pickle(many_lists_pickle(5000000)));
    expect_error(p, {"more than 1000000 objects"});
}

TEST_F(BadFiles, PickleSelfContainingListIsNoCrash) {
    // A list appended into itself through the memo (a cycle): refused for its depth, nothing leaks or loops.
    std::string pk = std::string("\x80\x02]q\0", 5);  // EMPTY_LIST, BINPUT 0
    for (int k = 0; k < 200; ++k) pk += std::string("h\0a", 3);  // BINGET 0, APPEND
    pk += ".";
    auto p = write_file(dir + "/cycle.pth", pth_with_pickle(pk));
    expect_error(p, {"deeper than"});
}

TEST_F(BadFiles, Zip64LocatorPastTheEnd) {
    wan::io::save_pth(dir + "/good.pth", {{"w", at::arange(4, at::kFloat)}});
    auto p = write_file(dir + "/z64.pth", zip64_locator_past_end(read_all(dir + "/good.pth")));
    expect_error(p, {"zip64 locator points at offset 18446744073709551608"});
}

TEST_F(BadFiles, Zip64ExtraFieldTooShort) {
    // The central record defers both sizes to the zip64 field (0xFFFFFFFF) but the field holds no bytes.
    std::string extra;
    put<uint16_t>(extra, 1);
    put<uint16_t>(extra, 0);
    auto p = write_file(dir + "/extra.pth", zip_stored({{"archive/data.pkl", "\x80\x02}.", extra}}));
    expect_error(p, {"'archive/data.pkl'", "zip64 extra field too short"});
}

TEST_F(BadFiles, ZipExtraFieldLongerThanItsEntry) {
    std::string extra;
    put<uint16_t>(extra, 0x4246);
    put<uint16_t>(extra, 1000);  // but the entry's extra area is only these 4 bytes
    auto p = write_file(dir + "/extra2.pth", zip_stored({{"archive/data.pkl", "\x80\x02}.", extra}}));
    expect_error(p, {"extra field of 1000 bytes runs past its entry"});
}

TEST_F(BadFiles, ZipEntryCountLargerThanDirectory) {
    std::string bytes = zip_stored({{"archive/data.pkl", "\x80\x02}.", ""}});
    const size_t eocd = bytes.size() - 22;
    std::memcpy(&bytes[eocd + 8], "\xfe\xff\xfe\xff", 4);  // 65534 entries in a 54-byte directory
    auto p = write_file(dir + "/count.pth", bytes);
    expect_error(p, {"claims 65534 entries"});
}

TEST(WanConfig, NestedThreeHundredThousandDeep) {
    // Valid JSON; used to crash while the error message dumped the value recursively.
    try {
        wan::io::WanConfig::from_json_string(nested_json_config(300000), "deep/config.json");
        FAIL() << "accepted";
    } catch (const wan::Error& e) {
        std::string msg = e.what();
        EXPECT_NE(msg.find("deep/config.json: JSON nests deeper than 64 levels"), std::string::npos) << msg;
    }
}

TEST(WanConfig, BadValueIsShownBriefly) {
    // A wrong field type is reported with a bounded excerpt of the value, never the whole value.
    std::string big = "[1";
    for (int k = 0; k < 100000; ++k) big += ",1";
    big += "]";
    try {
        wan::io::WanConfig::from_json_string(R"({"dim":)" + big + R"(,"ffn_dim":8,"num_heads":3,"num_layers":1})",
                                             "cfg.json");
        FAIL();
    } catch (const wan::Error& e) {
        std::string msg = e.what();
        EXPECT_NE(msg.find("\"dim\" must be an integer"), std::string::npos) << msg.substr(0, 300);
        EXPECT_LT(msg.size(), 400u) << msg.substr(0, 300);
    }
    try {
        wan::io::WanConfig::from_json_string(R"({"dim":[[1],[2]],"ffn_dim":8,"num_heads":3,"num_layers":1})", "cfg.json");
        FAIL();
    } catch (const wan::Error& e) {
        EXPECT_NE(std::string(e.what()).find("got an array of 2 items"), std::string::npos) << e.what();
    }
}

TEST_F(BadFiles, SafetensorsHeaderNestedDeep) {
    std::string h = R"({"__metadata__":{"x":)" + std::string(1000, '[') + std::string(1000, ']') + "}}";
    auto p = write_file(dir + "/deep.safetensors", safetensors_bytes(h, 0));
    expect_error(p, {"JSON nests deeper than 64 levels"});
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
