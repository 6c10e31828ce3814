#include "ui/load_panel.h"

#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QProgressBar>
#include <QPushButton>

#include <algorithm>

namespace wan::app {

namespace {
// The bar counts in thousandths: bytes of a 14B load (~40 GB) do not fit QProgressBar's int.
constexpr int kBarSteps = 1000;

QString gigabytes(uint64_t bytes) { return QString::number(static_cast<double>(bytes) / 1e9, 'f', 2); }
}  // namespace

LoadPanel::LoadPanel(QWidget* parent) : QWidget(parent) {
    setObjectName(QStringLiteral("loadPanel"));
    auto* row = new QHBoxLayout(this);
    row->setContentsMargins(0, 0, 0, 0);
    bar_ = new QProgressBar;
    bar_->setObjectName(QStringLiteral("loadProgressBar"));
    bar_->setFixedWidth(220);
    bar_->setRange(0, kBarSteps);
    row->addWidget(bar_);
    cancel_ = new QPushButton(tr("Cancel"));
    cancel_->setObjectName(QStringLiteral("cancelLoadButton"));
    cancel_->setToolTip(tr("Stop loading the model (between two tensors, on every rank)"));
    row->addWidget(cancel_);
    openModel_ = new QPushButton(tr("Open model…"));
    openModel_->setObjectName(QStringLiteral("loadOpenModelButton"));
    openModel_->setToolTip(tr("Load this model again or another one (restarts the engine; queued jobs are kept)"));
    row->addWidget(openModel_);
    connect(cancel_, &QPushButton::clicked, this, [this] {
        cancel_->setEnabled(false);
        cancel_->setText(tr("Cancelling…"));
        emit cancelRequested();
    });
    connect(openModel_, &QPushButton::clicked, this, &LoadPanel::openModelRequested);
    clear();
}

QString LoadPanel::statusText(const LoadProgress& p) {
    const QString file = QFileInfo(QString::fromStdString(p.file)).fileName();
    return tr("Loading the %1: %2").arg(QString::fromStdString(p.component), file);
}

void LoadPanel::showStarting() {
    bar_->setRange(0, 0);  // busy until the first report gives the sizes
    bar_->setVisible(true);
    cancel_->setEnabled(true);
    cancel_->setText(tr("Cancel"));
    cancel_->setVisible(true);
    openModel_->setVisible(false);
    setVisible(true);
}

void LoadPanel::showProgress(const LoadProgress& p) {
    if (p.bytes_total == 0) return;
    bar_->setRange(0, kBarSteps);
    const double fraction = static_cast<double>(std::min(p.bytes_done, p.bytes_total)) / static_cast<double>(p.bytes_total);
    bar_->setValue(static_cast<int>(fraction * kBarSteps));
    bar_->setFormat(tr("%1 of %2 GB").arg(gigabytes(p.bytes_done), gigabytes(p.bytes_total)));
    bar_->setToolTip(tr("%1\n%2 s").arg(QString::fromStdString(p.file)).arg(p.elapsed_s, 0, 'f', 1));
}

void LoadPanel::showCancelled() {
    bar_->setVisible(false);
    cancel_->setVisible(false);
    openModel_->setVisible(true);
    setVisible(true);
}

void LoadPanel::clear() {
    setVisible(false);
    bar_->reset();
}

}  // namespace wan::app
