#include "ui/lora_list_widget.h"

#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QTableWidget>
#include <QToolButton>
#include <QVBoxLayout>

namespace wan::app {

namespace {
constexpr int kFileColumn = 0;      // check box (enabled) + file name; the full path in Qt::UserRole
constexpr int kStrengthColumn = 1;  // a QDoubleSpinBox
}  // namespace

LoraListWidget::LoraListWidget(QWidget* parent) : QWidget(parent) {
    auto* column = new QVBoxLayout(this);
    column->setContentsMargins(0, 0, 0, 0);
    table_ = new QTableWidget(0, 2, this);
    table_->setObjectName(QStringLiteral("loraTable"));
    table_->setHorizontalHeaderLabels({tr("LoRA"), tr("Strength")});
    table_->horizontalHeader()->setSectionResizeMode(kFileColumn, QHeaderView::Stretch);
    table_->horizontalHeader()->setSectionResizeMode(kStrengthColumn, QHeaderView::ResizeToContents);
    table_->verticalHeader()->setVisible(false);
    table_->setSelectionBehavior(QAbstractItemView::SelectRows);
    table_->setMaximumHeight(110);
    table_->setToolTip(tr("LoRAs merged into the model for the job, top to bottom; untick one to leave it out"));
    column->addWidget(table_);
    auto* buttons = new QHBoxLayout;
    add_ = new QToolButton(this);
    add_->setObjectName(QStringLiteral("addLoraButton"));
    add_->setText(tr("Add LoRA…"));
    remove_ = new QToolButton(this);
    remove_->setObjectName(QStringLiteral("removeLoraButton"));
    remove_->setText(tr("Remove"));
    buttons->addWidget(add_);
    buttons->addWidget(remove_);
    buttons->addStretch(1);
    column->addLayout(buttons);
    connect(add_, &QToolButton::clicked, this, &LoraListWidget::browseForFile);
    connect(remove_, &QToolButton::clicked, this, [this] {
        if (table_->currentRow() >= 0) removeRow(table_->currentRow());
    });
}

std::vector<LoraSpec> LoraListWidget::loras() const {
    std::vector<LoraSpec> out;
    for (int row = 0; row < table_->rowCount(); ++row) {
        const QTableWidgetItem* item = table_->item(row, kFileColumn);
        if (!item || item->checkState() != Qt::Checked) continue;
        const auto* strength = qobject_cast<const QDoubleSpinBox*>(table_->cellWidget(row, kStrengthColumn));
        out.push_back({item->data(Qt::UserRole).toString().toStdString(), strength ? strength->value() : 1.0});
    }
    return out;
}

void LoraListWidget::setLoras(const std::vector<LoraSpec>& loras) {
    table_->setRowCount(0);
    for (const LoraSpec& l : loras) addLora(l);
}

void LoraListWidget::addLora(const LoraSpec& lora, bool enabled) {
    const int row = table_->rowCount();
    table_->insertRow(row);
    const QString path = QString::fromStdString(lora.path);
    auto* item = new QTableWidgetItem(QFileInfo(path).fileName());
    item->setData(Qt::UserRole, path);
    item->setToolTip(path);
    item->setFlags(Qt::ItemIsEnabled | Qt::ItemIsSelectable | Qt::ItemIsUserCheckable);
    item->setCheckState(enabled ? Qt::Checked : Qt::Unchecked);
    table_->setItem(row, kFileColumn, item);
    auto* strength = new QDoubleSpinBox(table_);
    strength->setRange(-10.0, 10.0);  // negative strengths are allowed (they subtract the LoRA)
    strength->setDecimals(3);
    strength->setSingleStep(0.05);
    strength->setValue(lora.strength);
    table_->setCellWidget(row, kStrengthColumn, strength);
}

void LoraListWidget::removeRow(int row) {
    if (row >= 0 && row < table_->rowCount()) table_->removeRow(row);
}

void LoraListWidget::browseForFile() {
    const QStringList files = QFileDialog::getOpenFileNames(this, tr("Add LoRA"), QString(),
                                                            tr("LoRA files (*.safetensors);;All files (*)"));
    for (const QString& f : files) addLora({f.toStdString(), 1.0});
}

}  // namespace wan::app
