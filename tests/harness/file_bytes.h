// file_bytes(path): the whole content of a file, byte for byte ("" when it cannot be read), for tests that compare
// what a writer left on disk.
#pragma once

#include <fstream>
#include <sstream>
#include <string>

namespace wan::test {

inline std::string file_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace wan::test
