// The "dashscope" back end: Alibaba DashScope text generation over HTTPS (libcurl).
// Ref: wan21-reference.md §9.2. Upstream retries any exception 4 times; here only transient failures
// (connection errors, timeouts, HTTP 429 and 5xx) are retried, with a doubling back-off, and every failure
// is reported with a message that says what to fix. The original prompt is kept on any failure.
#include "backends.h"

#include "core/core.h"

#include <curl/curl.h>
#include <nlohmann/json.hpp>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <thread>

namespace wan::extend {

namespace {

constexpr const char* kDefaultBaseUrl = "https://dashscope.aliyuncs.com/api/v1";
constexpr const char* kDefaultModel = "qwen-plus";
constexpr const char* kGenerationPath = "/services/aigc/text-generation/generation";

struct CurlDeleter {
    void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
    void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

/// Where curl's callbacks put the body and look for a reason to stop.
struct Transfer {
    std::string body;
    size_t max_bytes = 0;
    bool too_large = false;
    const std::function<bool()>* cancelled = nullptr;
};

size_t write_body(char* data, size_t size, size_t n, void* user) {
    auto* t = static_cast<Transfer*>(user);
    if (t->body.size() + size * n > t->max_bytes) {
        t->too_large = true;
        return 0;  // curl ends the transfer with CURLE_WRITE_ERROR
    }
    t->body.append(data, size * n);
    return size * n;
}

/// curl calls this about once a second and whenever data moves; non-zero aborts (CURLE_ABORTED_BY_CALLBACK).
int check_cancel(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    const auto* t = static_cast<const Transfer*>(user);
    return (*t->cancelled)() ? 1 : 0;
}

/// One try's outcome.
struct Attempt {
    bool done = false;       // success: `content` holds the answer
    bool transient = false;  // worth another try
    std::string content;
    std::string raw;         // the response body
    std::string error;       // what went wrong, for a person
};

std::string env_or_empty(const char* name) {
    const char* v = std::getenv(name);
    return v ? std::string(v) : std::string();
}

/// "code: message" of a DashScope error body, or a short excerpt of a body that is not one.
std::string describe_error_body(const std::string& body, std::string* code_out) {
    try {
        const nlohmann::json j = nlohmann::json::parse(body);
        if (j.is_object()) {
            const std::string code = j.contains("code") && j["code"].is_string() ? j["code"].get<std::string>() : "";
            const std::string msg =
                j.contains("message") && j["message"].is_string() ? j["message"].get<std::string>() : "";
            if (code_out) *code_out = code;
            if (!code.empty() || !msg.empty()) return code + (code.empty() || msg.empty() ? "" : ": ") + msg;
        }
    } catch (const std::exception&) {
    }
    std::string excerpt = body.substr(0, 200);
    for (char& c : excerpt)
        if (c == '\n' || c == '\r') c = ' ';
    return excerpt.empty() ? "(empty body)" : "body: " + excerpt + (body.size() > 200 ? "..." : "");
}

bool is_quota_code(const std::string& code) {
    // DashScope codes for rate limits, exhausted quota and unpaid accounts.
    for (const char* k : {"Throttling", "Quota", "quota", "Arrearage", "Insufficient", "Limit"})
        if (code.find(k) != std::string::npos) return true;
    return false;
}

/// The host of an "http://" URL, lower-case, without user info, port or IPv6 brackets.
std::string http_host(const std::string& url) {
    std::string rest = url.substr(7);
    rest = rest.substr(0, rest.find_first_of("/?#"));
    if (const size_t at = rest.rfind('@'); at != std::string::npos) rest = rest.substr(at + 1);
    std::string host;
    if (!rest.empty() && rest[0] == '[') {  // [::1]:8080
        const size_t close = rest.find(']');
        host = rest.substr(1, close == std::string::npos ? std::string::npos : close - 1);
    } else {
        host = rest.substr(0, rest.find(':'));
    }
    for (char& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return host;
}

/// localhost, 127.0.0.0/8 (dotted, four numbers) or ::1.
bool is_loopback(const std::string& host) {
    if (host == "localhost" || host == "::1") return true;
    unsigned a = 0, b = 0, c = 0, d = 0;
    char tail = 0;
    return std::sscanf(host.c_str(), "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) == 4 && a == 127 && b < 256 &&
           c < 256 && d < 256;
}

bool starts_with_nocase(const std::string& s, const char* prefix) {
    for (size_t i = 0; prefix[i]; ++i)
        if (i >= s.size() || std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
    return true;
}

class DashScopeExtender final : public PromptExtender {
public:
    DashScopeExtender(std::string model, const ExtendOptions& options)
        : model_(model.empty() ? kDefaultModel : std::move(model)), options_(options) {
        static std::once_flag once;
        std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    }

    std::string method() const override { return "dashscope"; }
    std::string model() const override { return model_; }

    ExtendResult extend(const std::string& prompt, const std::string& target_lang, int64_t seed) override {
        return guarded_extend(prompt, target_lang, seed, options_, "dashscope", [&](ExtendResult& r) {
            const std::string key = options_.api_key.empty() ? env_or_empty("DASH_API_KEY") : options_.api_key;
            if (key.empty()) {
                r.message = "dashscope: no API key: set the environment variable DASH_API_KEY (or the API key "
                            "option), or use the local_qwen method";
                return;
            }
            std::string base = options_.base_url.empty() ? env_or_empty("DASH_API_URL") : options_.base_url;
            const char* source = options_.base_url.empty() ? "DASH_API_URL" : "the DashScope base URL option";
            if (base.empty()) base = kDefaultBaseUrl;
            if (const std::string refusal = dashscope_url_refusal(base, source); !refusal.empty()) {
                r.message = "dashscope: " + refusal;
                return;
            }
            while (!base.empty() && base.back() == '/') base.pop_back();
            const std::string url = base + kGenerationPath;

            // Request body of dashscope.Generation.call(model, messages, seed, result_format='message').
            const nlohmann::json body = {
                {"model", model_},
                {"input",
                 {{"messages",
                   nlohmann::json::array({{{"role", "system"}, {"content", r.system_prompt}},
                                          {{"role", "user"}, {"content", prompt}}})}}},
                {"parameters", {{"seed", r.seed}, {"result_format", "message"}}}};
            const std::string payload = body.dump();

            const int tries = std::max(1, options_.max_tries);
            int64_t backoff_ms = std::max<int64_t>(0, options_.retry_backoff_ms);
            Attempt a;
            for (int t = 1; t <= tries; ++t) {
                a = post(url, key, payload);
                if (a.done || !a.transient) break;
                if (t < tries) {
                    WAN_LOG_WARN("dashscope: try %d of %d failed (%s); retrying in %lld ms", t, tries,
                                 a.error.c_str(), static_cast<long long>(backoff_ms));
                    if (!pause_unless_cancelled(backoff_ms)) {
                        a.error = "cancelled";
                        break;
                    }
                    backoff_ms *= 2;
                } else {
                    a.error += strfmt(" (gave up after %d tries)", tries);
                }
            }
            if (!a.done) {
                r.message = "dashscope: " + a.error;
                return;
            }
            if (a.content.find_first_not_of(" \t\r\n") == std::string::npos) {
                r.message = "dashscope: the service returned an empty prompt; keeping the original";
                return;
            }
            r.ok = true;
            r.prompt = a.content;
            r.message = a.raw;
        });
    }

private:
    /// Sleeps `ms` in short slices; false (at once) when the extension is cancelled meanwhile.
    bool pause_unless_cancelled(int64_t ms) const {
        const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
        while (std::chrono::steady_clock::now() < until) {
            if (cancel_requested()) return false;
            std::this_thread::sleep_for(std::chrono::milliseconds(std::min<int64_t>(ms, 50)));
        }
        return !cancel_requested();
    }

    Attempt post(const std::string& url, const std::string& key, const std::string& payload) const {
        Attempt a;
        std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
        if (!curl) {
            a.error = "curl_easy_init failed";
            return a;
        }
        std::unique_ptr<curl_slist, SlistDeleter> headers;
        auto add = [&](const std::string& h) { headers.reset(curl_slist_append(headers.release(), h.c_str())); };
        add("Authorization: Bearer " + key);
        add("Content-Type: application/json");
        add("Accept: application/json");
        add("Expect:");  // no "100-continue" round trip for the ~4 KB body
        const std::function<bool()> cancelled = [this] { return cancel_requested(); };
        Transfer transfer;
        transfer.max_bytes = static_cast<size_t>(std::max<int64_t>(0, options_.max_response_bytes));
        transfer.cancelled = &cancelled;
        const std::string& response = transfer.body;
        char errbuf[CURL_ERROR_SIZE] = {0};
        CURL* c = curl.get();
        curl_easy_setopt(c, CURLOPT_URL, url.c_str());
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload.data());
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(payload.size()));
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &write_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &transfer);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, &check_cancel);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, &transfer);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);  // enables check_cancel
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout_ms));
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout_ms));
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // timeouts without SIGALRM: safe in threads
        curl_easy_setopt(c, CURLOPT_USERAGENT, (std::string("WanStudio/") + version_string()).c_str());

        const CURLcode rc = curl_easy_perform(c);
        if (rc == CURLE_ABORTED_BY_CALLBACK) {
            a.error = "cancelled";
            return a;
        }
        if (rc == CURLE_WRITE_ERROR && transfer.too_large) {
            a.error = strfmt("the answer from %s is larger than %lld bytes; refused (not a prompt)", url.c_str(),
                             static_cast<long long>(options_.max_response_bytes));
            return a;
        }
        if (rc != CURLE_OK) {
            const std::string detail = errbuf[0] ? errbuf : curl_easy_strerror(rc);
            switch (rc) {
                case CURLE_OPERATION_TIMEDOUT:
                    a.transient = true;
                    a.error = strfmt("request to %s timed out (connect timeout %lld ms, total %lld ms): %s",
                                     url.c_str(), static_cast<long long>(options_.connect_timeout_ms),
                                     static_cast<long long>(options_.timeout_ms), detail.c_str());
                    break;
                case CURLE_COULDNT_RESOLVE_HOST:
                case CURLE_COULDNT_RESOLVE_PROXY:
                case CURLE_COULDNT_CONNECT:
                case CURLE_SEND_ERROR:
                case CURLE_RECV_ERROR:
                case CURLE_GOT_NOTHING:
                case CURLE_PARTIAL_FILE:
                case CURLE_SSL_CONNECT_ERROR:
                    a.transient = true;
                    a.error = strfmt("cannot reach %s (network down or service unreachable?): %s", url.c_str(),
                                     detail.c_str());
                    break;
                default:
                    a.error = strfmt("request to %s failed: %s", url.c_str(), detail.c_str());
            }
            return a;
        }
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        a.raw = response;
        if (status != 200) {
            std::string code;
            const std::string what = describe_error_body(response, &code);
            if (status == 401 || status == 403) {
                a.error = strfmt("the API key was rejected (HTTP %ld, %s): check DASH_API_KEY", status, what.c_str());
            } else if (status == 429) {
                a.transient = true;
                a.error = strfmt("rate limit or quota exceeded (HTTP 429, %s)", what.c_str());
            } else if (status >= 500) {
                a.transient = true;
                a.error = strfmt("service error (HTTP %ld, %s)", status, what.c_str());
            } else if (is_quota_code(code)) {
                a.error = strfmt("quota exhausted or account limited (HTTP %ld, %s)", status, what.c_str());
            } else {
                a.error = strfmt("request refused (HTTP %ld, %s)", status, what.c_str());
            }
            return a;
        }
        // Success: output.choices[0].message.content.
        nlohmann::json j;
        try {
            j = nlohmann::json::parse(response);
        } catch (const std::exception&) {
            a.error = "malformed answer (HTTP 200 but not JSON): " + describe_error_body(response, nullptr);
            return a;
        }
        try {
            const auto& content = j.at("output").at("choices").at(0).at("message").at("content");
            if (!content.is_string()) throw std::runtime_error("content is not a string");
            a.content = content.get<std::string>();
            a.raw = j.dump();  // upstream: json.dumps(response, ensure_ascii=False)
            a.done = true;
        } catch (const std::exception& e) {
            std::string code;
            const std::string what = describe_error_body(response, &code);
            a.error = strfmt("malformed answer: no output.choices[0].message.content string (%s); %s",
                             e.what(), what.c_str());
            if (is_quota_code(code)) a.error = "quota exhausted or account limited: " + what;
        }
        return a;
    }

    std::string model_;
    ExtendOptions options_;
};

}  // namespace

std::string dashscope_url_refusal(const std::string& url, const std::string& source) {
    if (starts_with_nocase(url, "https://")) return {};
    if (starts_with_nocase(url, "http://")) {
        const std::string host = http_host(url);
        if (is_loopback(host)) return {};
        return strfmt("refusing to send the API key in clear over plain http to '%s' (%s): use an https:// URL "
                      "(plain http is accepted only for this machine: localhost, 127.0.0.1, [::1])",
                      url.c_str(), source.c_str());
    }
    return strfmt("the DashScope URL '%s' (%s) is not an https:// URL", url.c_str(), source.c_str());
}

std::unique_ptr<PromptExtender> make_dashscope_extender(const std::string& model, const ExtendOptions& options) {
    return std::make_unique<DashScopeExtender>(model, options);
}

}  // namespace wan::extend
