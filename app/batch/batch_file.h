// `--batch FILE`: one prompt per line, or JSON lines whose keys are GenerationRequest JSON keys (plus "size":
// "W*H") applied over the command-line defaults. Blank lines and lines starting with '#' are skipped.
#pragma once

#include "core/core.h"

#include <string>
#include <vector>

namespace wan::app {

/// Parses batch text. `defaults` supplies every field a line leaves out. Throws wan::Error naming
/// `source` and the 1-based line number for malformed JSON, unknown keys, wrong types, empty prompts and
/// invalid values (GenerationRequest::validate).
std::vector<GenerationRequest> parseBatchText(const std::string& text, const GenerationRequest& defaults,
                                              const std::string& source = "batch file");
/// Reads and parses a batch file; throws wan::Error naming the file when it cannot be read or is empty.
std::vector<GenerationRequest> parseBatchFile(const std::string& path, const GenerationRequest& defaults);

}  // namespace wan::app
