#include "batch/batch_file.h"

#include <QFile>
#include <QJsonDocument>
#include <QJsonObject>
#include <QSet>
#include <QString>

namespace wan::app {

namespace {
// The keys GenerationRequest::from_json reads, plus "size". job_id is the session's.
const QSet<QString>& allowedKeys() {
    static const QSet<QString> keys = {
        QStringLiteral("prompt"), QStringLiteral("negative_prompt"), QStringLiteral("width"),
        QStringLiteral("height"), QStringLiteral("size"), QStringLiteral("frame_num"),
        QStringLiteral("sample_steps"), QStringLiteral("sample_shift"), QStringLiteral("sample_guide_scale"),
        QStringLiteral("sample_solver"), QStringLiteral("base_seed"), QStringLiteral("output_dir"),
        QStringLiteral("init_noise"), QStringLiteral("save_latents"), QStringLiteral("use_prompt_extend"),
        QStringLiteral("prompt_extend_target_lang"), QStringLiteral("original_prompt")};
    return keys;
}

std::string trim(const std::string& s) {
    const char* ws = " \t\r\n\v\f";
    size_t b = s.find_first_not_of(ws);
    if (b == std::string::npos) return {};
    size_t e = s.find_last_not_of(ws);
    return s.substr(b, e - b + 1);
}
}  // namespace

std::vector<GenerationRequest> parseBatchText(const std::string& text, const GenerationRequest& defaults,
                                              const std::string& source) {
    const QJsonObject base = QJsonDocument::fromJson(QByteArray::fromStdString(defaults.to_json())).object();
    std::vector<GenerationRequest> jobs;
    size_t pos = 0;
    int lineNo = 0;
    while (pos <= text.size()) {
        size_t nl = text.find('\n', pos);
        std::string raw = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
        pos = nl == std::string::npos ? text.size() + 1 : nl + 1;
        ++lineNo;
        if (lineNo == 1 && raw.size() >= 3 && raw.compare(0, 3, "\xEF\xBB\xBF") == 0) raw.erase(0, 3);  // BOM
        const std::string line = trim(raw);
        if (line.empty() || line[0] == '#') continue;
        GenerationRequest r = defaults;
        if (line[0] == '{') {
            QJsonParseError error{};
            QJsonDocument doc = QJsonDocument::fromJson(QByteArray::fromStdString(line), &error);
            WAN_CHECK(error.error == QJsonParseError::NoError && doc.isObject(),
                      "%s, line %d: not valid JSON (%s at column %d); expected a plain prompt or a JSON object "
                      "such as {\"prompt\": \"...\", \"size\": \"832*480\"}",
                      source.c_str(), lineNo,
                      error.error != QJsonParseError::NoError ? error.errorString().toStdString().c_str() : "not an object",
                      error.offset + 1);
            QJsonObject merged = base;
            const QJsonObject obj = doc.object();
            for (auto it = obj.begin(); it != obj.end(); ++it) {
                WAN_CHECK(allowedKeys().contains(it.key()),
                          "%s, line %d: unknown key \"%s\" (expected GenerationRequest keys such as prompt, "
                          "negative_prompt, size, frame_num, sample_steps, sample_shift, sample_guide_scale, "
                          "sample_solver, base_seed)",
                          source.c_str(), lineNo, it.key().toStdString().c_str());
                merged.insert(it.key(), it.value());
            }
            // "size" wins over the defaults' width/height (from_json applies it after them).
            try {
                r = GenerationRequest::from_json(QJsonDocument(merged).toJson(QJsonDocument::Compact).toStdString());
            } catch (const Error& e) {
                WAN_THROW("%s, line %d: %s", source.c_str(), lineNo, e.what());
            }
        } else {
            r.prompt = line;
        }
        WAN_CHECK(!trim(r.prompt).empty(), "%s, line %d: the prompt is empty", source.c_str(), lineNo);
        const std::vector<std::string> problems = r.validate();
        if (!problems.empty()) {
            std::string all;
            for (const std::string& p : problems) all += (all.empty() ? "" : "; ") + p;
            WAN_THROW("%s, line %d: %s", source.c_str(), lineNo, all.c_str());
        }
        r.job_id = 0;
        jobs.push_back(std::move(r));
    }
    return jobs;
}

std::vector<GenerationRequest> parseBatchFile(const std::string& path, const GenerationRequest& defaults) {
    QFile f(QString::fromStdString(path));
    WAN_CHECK(f.open(QIODevice::ReadOnly), "--batch %s: cannot open the file (%s)", path.c_str(),
              f.errorString().toStdString().c_str());
    std::vector<GenerationRequest> jobs = parseBatchText(f.readAll().toStdString(), defaults, "--batch " + path);
    WAN_CHECK(!jobs.empty(), "--batch %s: no prompts in the file (one per line, or JSON lines)", path.c_str());
    return jobs;
}

}  // namespace wan::app
