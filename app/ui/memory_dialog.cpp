#include "ui/memory_dialog.h"

#include "ui/restart_buttons.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QLabel>
#include <QPushButton>
#include <QVBoxLayout>

namespace wan::app {

MemoryDialog::MemoryDialog(const MemoryOptions& current, QWidget* parent) : QDialog(parent), current_(current) {
    setWindowTitle(tr("Memory"));
    auto* form = new QFormLayout;
    dtype_ = new QComboBox;
    dtype_->setObjectName(QStringLiteral("ditDtypeCombo"));
    dtype_->addItem(tr("Automatic (fp8 for an fp8 file, else bf16)"), QStringLiteral("auto"));
    dtype_->addItem(tr("fp8: half the memory of bf16"), QStringLiteral("fp8"));
    dtype_->addItem(tr("bf16: as the model was trained"), QStringLiteral("bf16"));
    dtype_->setToolTip(tr("--dit-dtype: how the DiT's block weights are held on the GPU"));
    form->addRow(tr("DiT weights:"), dtype_);
    maxVram_ = new QDoubleSpinBox;
    maxVram_->setObjectName(QStringLiteral("maxVramSpin"));
    maxVram_->setRange(0, 1024);
    maxVram_->setDecimals(1);
    maxVram_->setSuffix(tr(" GB"));
    maxVram_->setSpecialValueText(tr("No limit"));  // 0
    maxVram_->setToolTip(tr("--max-vram: keep as many DiT blocks on the GPU as fit, stream the others from host "
                            "memory (e.g. 22 for a 24 GB card)"));
    form->addRow(tr("GPU memory limit:"), maxVram_);
    offload_ = new QCheckBox(tr("Stream every DiT block from host memory (slowest, least GPU memory)"));
    offload_->setObjectName(QStringLiteral("offloadDitBox"));
    offload_->setToolTip(tr("--offload-dit"));
    form->addRow(QString(), offload_);
    note_ = new QLabel;
    note_->setObjectName(QStringLiteral("memoryNoteLabel"));
    note_->setWordWrap(true);

    auto* top = new QVBoxLayout(this);
    top->addLayout(form);
    top->addWidget(note_);
    ok_ = addRestartButtons(this, top, tr("Reload the engine"),
                            tr("The model is loaded again with these options, on every GPU of the running layout; "
                               "the queue is kept."));
    connect(dtype_, &QComboBox::currentIndexChanged, this, [this] { update(); });
    connect(maxVram_, &QDoubleSpinBox::valueChanged, this, [this] { update(); });
    connect(offload_, &QCheckBox::toggled, this, [this] { update(); });
    setOptions(current);
}

MemoryOptions MemoryDialog::options() const {
    MemoryOptions m;
    m.ditDtype = dtype_->currentData().toString().toStdString();
    m.maxVramGb = maxVram_->value();
    m.offloadDit = offload_->isChecked();
    return m;
}

void MemoryDialog::setOptions(const MemoryOptions& m) {
    const int index = dtype_->findData(QString::fromStdString(m.ditDtype));
    dtype_->setCurrentIndex(index < 0 ? 0 : index);
    maxVram_->setValue(m.maxVramGb);
    offload_->setChecked(m.offloadDit);
    update();
}

void MemoryDialog::update() {
    const MemoryOptions m = options();
    const QString summary = QString::fromStdString(m.summary());
    if (m == current_) note_->setText(tr("These are the running engine's options."));
    else note_->setText(summary.isEmpty() ? tr("The defaults: the DiT resident on the GPU.") : tr("New: %1").arg(summary));
    ok_->setEnabled(m != current_);  // nothing to reload for
}

}  // namespace wan::app
