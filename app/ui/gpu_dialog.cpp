#include "ui/gpu_dialog.h"

#include "ui/restart_buttons.h"

#include <QCheckBox>
#include <QFormLayout>
#include <QLabel>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QVBoxLayout>

#include <algorithm>

namespace wan::app {

namespace {
constexpr int kMaxGpus = 8;

QString currentLayoutText(const EngineInfo& info) {
    QString text = (info.world_size == 1 ? QObject::tr("1 process") : QObject::tr("%1 processes").arg(info.world_size)) +
                   QObject::tr(": Ulysses %1 × Ring %2").arg(info.ulysses_size).arg(info.ring_size);
    if (info.dit_fsdp || info.t5_fsdp) text += QObject::tr(", weights sharded (FSDP)");
    if (info.cfg_parallel) text += QObject::tr(", CFG-parallel");
    return text;
}

QString gpuListText(const GpuDialogSetup& s) {
    if (s.gpus.isEmpty())
        return s.probeNote.isEmpty() ? QObject::tr("No NVIDIA GPU found on this machine.") : s.probeNote;
    QStringList lines;
    for (int i = 0; i < s.gpus.size(); ++i)
        lines << QObject::tr("GPU %1: %2, %3 GiB").arg(i).arg(s.gpus[i].name).arg(s.gpus[i].memoryGb, 0, 'f', 0);
    return lines.join(QLatin1Char('\n'));
}
}  // namespace

GpuDialog::GpuDialog(const GpuDialogSetup& setup, QWidget* parent) : QDialog(parent), setup_(setup) {
    setWindowTitle(tr("GPUs"));
    auto* form = new QFormLayout;
    auto* gpus = new QLabel(gpuListText(setup_));
    gpus->setObjectName(QStringLiteral("gpuListLabel"));
    form->addRow(tr("Found:"), gpus);
    auto* running = new QLabel(currentLayoutText(setup_.current));
    running->setObjectName(QStringLiteral("currentLayoutLabel"));
    form->addRow(tr("Running now:"), running);
    form->addRow(tr("Model:"), new QLabel(tr("%1 (%2 attention heads)")
                                              .arg(setup_.modelName.isEmpty() ? tr("unknown") : setup_.modelName)
                                              .arg(setup_.numHeads)));
    count_ = new QSpinBox;
    count_->setObjectName(QStringLiteral("gpuCountBox"));
    // Without GPUs the ranks run on the CPU (useful to try a layout); with GPUs, one rank per GPU.
    count_->setRange(1, setup_.gpus.isEmpty() ? kMaxGpus : std::min<int>(kMaxGpus, setup_.gpus.size()));
    count_->setValue(std::clamp(setup_.current.world_size, 1, count_->maximum()));
    form->addRow(tr("Use:"), count_);
    fsdp_ = new QCheckBox(tr("Shard the DiT and T5 weights over the GPUs (FSDP)"));
    fsdp_->setObjectName(QStringLiteral("fsdpBox"));
    form->addRow(QString(), fsdp_);
    layout_ = new QLabel;
    layout_->setObjectName(QStringLiteral("proposedLayoutLabel"));
    layout_->setWordWrap(true);
    form->addRow(tr("Layout:"), layout_);
    command_ = new QPlainTextEdit;
    command_->setObjectName(QStringLiteral("commandView"));
    command_->setReadOnly(true);
    command_->setMaximumHeight(90);

    auto* top = new QVBoxLayout(this);
    top->addLayout(form);
    top->addWidget(new QLabel(tr("Command:")));
    top->addWidget(command_);
    ok_ = addRestartButtons(this, top, tr("Restart with this layout"),
                            tr("WanStudio restarts with this command; the queue is kept."));
    connect(count_, &QSpinBox::valueChanged, this, [this] { update(); });
    connect(fsdp_, &QCheckBox::toggled, this, [this] {
        fsdpTouched_ = true;
        update();
    });
    update();
}

int GpuDialog::gpuCount() const { return count_->value(); }

void GpuDialog::setGpuCount(int count) { count_->setValue(count); }

LayoutProposal GpuDialog::proposal() const {
    LayoutProposal p = proposeLayout(gpuCount(), setup_.numHeads, !fsdp_->isChecked());
    return p;
}

LaunchCommand GpuDialog::command() const {
    std::vector<std::string> args;
    for (const QString& a : setup_.arguments) args.push_back(a.toStdString());
    const LaunchLine line = mpirunCommand(setup_.mpirun.toStdString(), setup_.executable.toStdString(), args,
                                           proposal(), setup_.asRoot);
    LaunchCommand c;
    c.program = QString::fromStdString(line.program);
    for (const std::string& a : line.args) c.arguments << QString::fromStdString(a);
    return c;
}

void GpuDialog::update() {
    if (!fsdpTouched_) {  // the proposal, until the user decides otherwise
        const double memory = setup_.gpus.isEmpty() ? 0.0 : setup_.gpus.front().memoryGb;
        const QSignalBlocker block(fsdp_);
        fsdp_->setChecked(gpuCount() > 1 && !weightsFitOneGpu(setup_.numHeads, memory));
    }
    fsdp_->setEnabled(gpuCount() > 1);
    const LayoutProposal p = proposal();
    problems_.clear();
    for (const std::string& e : layoutProblems(p, setup_.numHeads)) problems_ << QString::fromStdString(e);
    layout_->setText(problems_.isEmpty() ? QString::fromStdString(describeLayout(p)) : problems_.join(QLatin1Char('\n')));
    command_->setPlainText(command().displayText());
    ok_->setEnabled(problems_.isEmpty());
}

}  // namespace wan::app
