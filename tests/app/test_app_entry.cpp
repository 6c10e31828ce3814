// runBatch and runGui as main.cpp calls them, with the fake backend. Each call creates (and destroys) its
// own Q(Core)Application, so this test has a plain main() rather than QTEST_MAIN.
#include "app_test_support.h"
#include "gui_entry.h"
#include "ui/main_window.h"

#include <QApplication>
#include <QDir>
#include <QFile>
#include <QTemporaryDir>
#include <QTimer>

#include <cstdio>
#include <string>
#include <vector>

using namespace wan;
using namespace wan::app;

namespace {
int failures = 0;
#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) {                                                              \
            std::fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);    \
            ++failures;                                                             \
        }                                                                           \
    } while (0)

struct Args {
    std::vector<std::string> storage{"wanstudio"};
    std::vector<char*> argv;
    int argc = 0;
    Args() {
        for (auto& s : storage) argv.push_back(s.data());
        argv.push_back(nullptr);
        argc = static_cast<int>(storage.size());
    }
};

void writeFile(const QString& path, const QByteArray& text) {
    QFile f(path);
    f.open(QIODevice::WriteOnly);
    f.write(text);
}

int runBatch(const AppOptions& options, const FakeBackendConfig& config) {
    Args a;
    return runBatch(a.argc, a.argv.data(), options, std::make_unique<FakeEngineBackend>(config));
}

int closeAfterMs = 0;
void closeWindowsLater() {
    // Runs when runGui's QApplication is constructed: close the window once the model has "loaded".
    QTimer::singleShot(closeAfterMs, [] {
        for (QWidget* w : QApplication::topLevelWidgets()) {
            if (auto* window = qobject_cast<MainWindow*>(w)) {
                window->setConfirmOnClose(false);
                window->close();
            }
        }
    });
}
}  // namespace

int main() {
    qputenv("QT_QPA_PLATFORM", "offscreen");
    QTemporaryDir dir;
    test::useTemporarySettings(dir.path());
    const QString out = QDir(dir.path()).filePath(QStringLiteral("outputs"));
    // The options of a --batch run over a file `name` holding `text`.
    const auto batchOptions = [&](const char* name, const char* text) {
        const QString batch = QDir(dir.path()).filePath(QString::fromLatin1(name));
        writeFile(batch, text);
        AppOptions o;
        o.batchFile = batch.toStdString();
        o.engine.output_dir = out.toStdString();
        return o;
    };

    {  // every job ok → 0, with the outputs written
        AppOptions o = batchOptions("ok.txt", "a cat\n{\"prompt\": \"a dog\", \"size\": \"96*64\"}\n");
        o.mode = RunMode::Headless;
        FakeBackendConfig c = test::fastFake();
        CHECK(runBatch(o, c) == 0);
        CHECK(QDir(out).entryList({QStringLiteral("*.mp4")}, QDir::Files).size() == 2);
        CHECK(c.probe->starts.load() == 1 && c.probe->shutdowns.load() == 1);
    }
    {  // --prompt alone
        AppOptions o;
        o.mode = RunMode::Headless;
        o.request.prompt = "single prompt";
        o.engine.output_dir = out.toStdString();
        FakeBackendConfig c = test::fastFake();
        CHECK(runBatch(o, c) == 0);
        CHECK(c.probe->runs.load() == 1);
    }
    {  // one job fails → 1, the others still run
        const AppOptions o = batchOptions("fail.txt", "one\nFAIL two\nthree\n");
        FakeBackendConfig c = test::fastFake();
        CHECK(runBatch(o, c) == 1);
        CHECK(c.probe->runs.load() == 3);
    }
    {  // a bad line → 2, nothing runs, the backend is still shut down (it releases the other ranks)
        const AppOptions o = batchOptions("bad.txt", "one\n{\"prompt\": oops}\n");
        FakeBackendConfig c = test::fastFake();
        CHECK(runBatch(o, c) == 2);
        CHECK(c.probe->runs.load() == 0 && c.probe->shutdowns.load() == 1);
    }
    {  // the engine fails to start → 3
        AppOptions o;
        o.request.prompt = "x";
        o.engine.output_dir = out.toStdString();
        FakeBackendConfig c = test::fastFake();
        c.startError = "no checkpoint";
        CHECK(runBatch(o, c) == 3);
        CHECK(c.probe->shutdowns.load() == 1);
    }
    {  // runGui: the window opens, the model loads, closing it shuts the engine down, exit code 0
        AppOptions o;
        o.engine.output_dir = out.toStdString();
        FakeBackendConfig c = test::fastFake();
        c.startDelayMs = 100;
        closeAfterMs = 600;
        qAddPreRoutine(closeWindowsLater);
        Args a;
        const int code = runGui(a.argc, a.argv.data(), o, std::make_unique<FakeEngineBackend>(c));
        CHECK(code == 0);
        CHECK(c.probe->starts.load() == 1);
        CHECK(c.probe->shutdowns.load() == 1);
        CHECK(c.probe->destroyed.load() == 1);
    }
    std::fprintf(stderr, "%s: %d failure(s)\n", failures ? "FAILED" : "PASSED", failures);
    return failures ? 1 : 0;
}
