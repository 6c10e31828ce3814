// Starting another copy of WanStudio (under mpirun, or with --connect): an interface so that the window can
// be tested without starting anything, a QProcess implementation, and the checks and messages around it.
#pragma once

#include <QProcessEnvironment>
#include <QString>
#include <QStringList>

namespace wan::app {

struct LaunchCommand {
    QString program;      ///< as typed ("mpirun") or a path
    QStringList arguments;
    /// Added to (or replacing in) the inherited environment, e.g. WANSTUDIO_API_TOKEN (kept off the command
    /// line, where `ps` would show it).
    QProcessEnvironment extraEnvironment;
    /// The command for a person to read or paste into a shell.
    QString displayText() const;
};

class Launcher {
public:
    virtual ~Launcher() = default;
    /// The program's full path (PATH search for a bare name), or empty when it cannot be found.
    virtual QString findProgram(const QString& program) const = 0;
    /// Starts the command detached (it outlives this process). False with `*error` set when it did not start.
    virtual bool startDetached(const LaunchCommand& command, QString* error) = 0;
};

/// The real one: QStandardPaths::findExecutable and QProcess::startDetached.
class ProcessLauncher : public Launcher {
public:
    QString findProgram(const QString& program) const override;
    bool startDetached(const LaunchCommand& command, QString* error) override;
};

/// The environment a relaunched WanStudio gets: `base` without the variables an MPI launcher gives its ranks
/// (OMPI_*, PMIX_*, PMI_*: a new mpirun started from a rank would otherwise join the old job), plus `extra`.
QProcessEnvironment childEnvironment(const QProcessEnvironment& base, const QProcessEnvironment& extra);

/// Why a relaunch did not happen, in words for a message box (empty when it started).
struct LaunchOutcome {
    bool started = false;
    QString message;
};

/// Checks that the program exists, then starts it. A missing mpirun says what to install
/// (`sudo apt install openmpi-bin`); a failed start says what failed. Nothing else changes on failure.
LaunchOutcome launchDetached(Launcher& launcher, const LaunchCommand& command);

}  // namespace wan::app
