#include "gui_entry.h"

#include "batch/batch_file.h"
#include "batch/batch_runner.h"
#include "session/engine_session.h"
#include "settings/settings.h"
#include "ui/icons.h"
#include "ui/main_window.h"

#include <QApplication>
#include <QCoreApplication>
#include <QIcon>
#include <QPointer>

#include <cstdio>

namespace wan::app {

namespace {
void setApplicationNames() {
    QCoreApplication::setOrganizationName(QStringLiteral("WanStudio"));
    QCoreApplication::setApplicationName(QStringLiteral("WanStudio"));
    QCoreApplication::setApplicationVersion(QString::fromUtf8(wan::version_string()));
}

char levelLetter(wan::LogLevel level) {
    switch (level) {
        case wan::LogLevel::Debug: return 'D';
        case wan::LogLevel::Info: return 'I';
        case wan::LogLevel::Warn: return 'W';
        case wan::LogLevel::Error: return 'E';
    }
    return '?';
}

/// Restores the default log sink however run_gui returns.
struct LogSinkGuard {
    ~LogSinkGuard() { wan::set_log_sink(nullptr); }
};
}  // namespace

int run_gui(int argc, char** argv, const AppOptions& options, std::unique_ptr<EngineBackend> backend) {
    QApplication app(argc, argv);
    setApplicationNames();
    QGuiApplication::setDesktopFileName(QStringLiteral("wanstudio"));
    QApplication::setWindowIcon(appIcon());
    registerMetaTypes();

    Settings settings;
    EngineSession session(std::move(backend));  // declared before the window: destroyed after it
    MainWindow window(&session, &settings, options);

    // Engine log lines go to stderr as before and to the window's log dock (queued: any thread may log).
    LogSinkGuard guard;
    QPointer<MainWindow> target(&window);
    wan::set_log_sink([target](wan::LogLevel level, const std::string& message) {
        std::fprintf(stderr, "[r%d] %c %s\n", wan::log_rank(), levelLetter(level), message.c_str());
        if (target.isNull()) return;
        const QString line = QString::fromStdString(message);
        const int lvl = static_cast<int>(level);
        QMetaObject::invokeMethod(target.data(), [target, lvl, line] {
            if (!target.isNull()) target->appendLog(lvl, line);
        }, Qt::QueuedConnection);
    });

    window.show();
    session.start();  // backend->start() on the engine thread; the window shows "Loading model…" meanwhile
    const int code = app.exec();
    wan::set_log_sink(nullptr);
    session.shutdown();
    session.waitForStopped();
    return code;
}

int run_batch(int argc, char** argv, const AppOptions& options, std::unique_ptr<EngineBackend> backend) {
    QCoreApplication app(argc, argv);
    setApplicationNames();
    registerMetaTypes();
    EngineSession session(std::move(backend));  // its destructor shuts the backend down on every path

    GenerationRequest defaults = options.request;
    if (defaults.output_dir.empty()) defaults.output_dir = options.output_dir;
    std::vector<GenerationRequest> jobs;
    try {
        if (!options.batch_file.empty()) {
            jobs = parseBatchFile(options.batch_file, defaults);
        } else {
            WAN_CHECK(!defaults.prompt.empty(), "--prompt: the prompt is empty");
            std::vector<std::string> problems = defaults.validate();
            WAN_CHECK(problems.empty(), "%s", problems.empty() ? "" : problems.front().c_str());
            jobs.push_back(defaults);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return BatchRunner::kExitBadInput;
    }

    BatchRunner runner(&session, std::move(jobs));
    QObject::connect(&runner, &BatchRunner::done, &app, [&app](int code) { app.exit(code); }, Qt::QueuedConnection);
    session.start();
    runner.start();
    const int code = runner.isDone() ? runner.exitCode() : app.exec();
    session.shutdown();
    session.waitForStopped();
    return code;
}

}  // namespace wan::app
