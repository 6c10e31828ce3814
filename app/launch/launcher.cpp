#include "launch/launcher.h"

#include <QFileInfo>
#include <QProcess>
#include <QStandardPaths>

namespace wan::app {

QString LaunchCommand::displayText() const {
    auto quote = [](const QString& s) {
        static const QString special = QStringLiteral(" \t\n'\"\\$`*?;&|<>()#~");
        bool plain = !s.isEmpty();
        for (QChar c : s) plain = plain && !special.contains(c);
        if (plain) return s;
        QString q = s;
        q.replace(QLatin1Char('\''), QStringLiteral("'\\''"));
        return QStringLiteral("'%1'").arg(q);
    };
    QStringList parts{quote(program)};
    for (const QString& a : arguments) parts << quote(a);
    return parts.join(QLatin1Char(' '));
}

QProcessEnvironment childEnvironment(const QProcessEnvironment& base, const QProcessEnvironment& extra) {
    QProcessEnvironment env = base;
    for (const QString& key : base.keys()) {
        if (key.startsWith(QLatin1String("OMPI_")) || key.startsWith(QLatin1String("PMIX_")) ||
            key.startsWith(QLatin1String("PMI_")))
            env.remove(key);
    }
    env.insert(extra);
    return env;
}

QString ProcessLauncher::findProgram(const QString& program) const {
    if (program.contains(QLatin1Char('/'))) {
        const QFileInfo info(program);
        return info.isFile() && info.isExecutable() ? info.absoluteFilePath() : QString();
    }
    return QStandardPaths::findExecutable(program);
}

bool ProcessLauncher::startDetached(const LaunchCommand& command, QString* error) {
    QProcess process;
    process.setProgram(command.program);
    process.setArguments(command.arguments);
    process.setProcessEnvironment(childEnvironment(QProcessEnvironment::systemEnvironment(), command.extraEnvironment));
    // Detached: the new window must outlive this one, which closes as soon as it has started.
    if (process.startDetached()) return true;
    if (error) *error = process.errorString();
    return false;
}

LaunchOutcome launchDetached(Launcher& launcher, const LaunchCommand& command) {
    LaunchOutcome out;
    const QString path = launcher.findProgram(command.program);
    if (path.isEmpty()) {
        const bool mpi = QFileInfo(command.program).fileName() == QLatin1String("mpirun");
        out.message = mpi ? QObject::tr("mpirun was not found, so WanStudio cannot start on several GPUs. Install "
                                        "OpenMPI (on Debian or Ubuntu: sudo apt install openmpi-bin) and try "
                                        "again. The current engine keeps working.")
                          : QObject::tr("%1 was not found. The current engine keeps working.").arg(command.program);
        return out;
    }
    LaunchCommand resolved = command;
    resolved.program = path;
    QString error;
    if (!launcher.startDetached(resolved, &error)) {
        out.message = QObject::tr("Could not start %1: %2. The current engine keeps working.")
                          .arg(command.displayText(), error.isEmpty() ? QObject::tr("unknown error") : error);
        return out;
    }
    out.started = true;
    return out;
}

}  // namespace wan::app
