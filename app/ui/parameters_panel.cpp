#include "ui/parameters_panel.h"

#include "core/presets.h"
#include "settings/defaults.h"
#include "ui/seed_spin_box.h"

#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QTextCursor>
#include <QToolButton>
#include <QVBoxLayout>

#include <algorithm>
#include <limits>

namespace wan::app {

namespace {
QString sizeText(int w, int h) { return QStringLiteral("%1*%2").arg(w).arg(h); }
}  // namespace

ParametersPanel::ParametersPanel(QWidget* parent) : QWidget(parent) {
    auto* column = new QVBoxLayout(this);
    column->setContentsMargins(0, 0, 0, 0);
    column->addWidget(buildPromptBox(), 3);
    column->addWidget(buildNegativePromptBox(), 2);
    column->addWidget(buildParametersBox());
    column->addWidget(buildOutputBox());
    setEngineReady(false);
}

QGroupBox* ParametersPanel::buildPromptBox() {
    auto* box = new QGroupBox(tr("Prompt"), this);
    auto* layout = new QVBoxLayout(box);
    prompt_ = new QPlainTextEdit(box);
    prompt_->setObjectName(QStringLiteral("promptEdit"));
    prompt_->setPlaceholderText(tr("Describe the video you want to generate"));
    prompt_->setTabChangesFocus(true);
    prompt_->setMinimumHeight(90);
    layout->addWidget(prompt_, 1);
    layout->addLayout(buildEnhanceRow(box));
    layout->addLayout(buildExtendStatusRow(box));

    connect(prompt_, &QPlainTextEdit::textChanged, this, [this] {
        if (!originalPrompt_.isEmpty() && prompt_->toPlainText().trimmed().isEmpty()) {
            originalPrompt_.clear();  // a new prompt: the old original no longer applies
            restore_->setVisible(false);
            extendStatus_->setVisible(false);
        }
    });
    return box;
}

QHBoxLayout* ParametersPanel::buildEnhanceRow(QWidget* box) {
    auto* row = new QHBoxLayout;
    enhance_ = new QPushButton(tr("Enhance prompt"), box);
    enhance_->setObjectName(QStringLiteral("enhanceButton"));
    enhance_->setToolTip(tr("Rewrite the prompt with the configured prompt-extension model; "
                            "you can edit the result before generating"));
    extendLang_ = new QComboBox(box);
    extendLang_->setObjectName(QStringLiteral("extendLanguageCombo"));
    extendLang_->addItem(tr("中文 (zh)"), QStringLiteral("zh"));
    extendLang_->addItem(tr("English (en)"), QStringLiteral("en"));
    extendLang_->setToolTip(tr("Target language of the enhanced prompt"));
    row->addWidget(enhance_);
    row->addWidget(extendLang_);
    row->addStretch(1);

    connect(enhance_, &QPushButton::clicked, this, [this] {
        const QString text = prompt_->toPlainText().trimmed();
        if (text.isEmpty()) {
            extendStatus_->setText(tr("Enter a prompt to enhance."));
            extendStatus_->setVisible(true);
            return;
        }
        extending_ = true;
        enhance_->setEnabled(false);
        enhance_->setText(tr("Enhancing…"));
        extendStatus_->setText(tr("Enhancing the prompt (after the running job, if any)…"));
        extendStatus_->setVisible(true);
        emit enhanceRequested(text, extendLang_->currentData().toString(), seed_->value());
    });
    return row;
}

QHBoxLayout* ParametersPanel::buildExtendStatusRow(QWidget* box) {
    auto* row = new QHBoxLayout;
    extendStatus_ = new QLabel(box);
    extendStatus_->setObjectName(QStringLiteral("extendStatusLabel"));
    extendStatus_->setWordWrap(true);
    extendStatus_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    extendStatus_->setVisible(false);
    restore_ = new QToolButton(box);
    restore_->setText(tr("Restore original"));
    restore_->setVisible(false);
    row->addWidget(extendStatus_, 1);
    row->addWidget(restore_, 0, Qt::AlignTop);

    connect(restore_, &QToolButton::clicked, this, &ParametersPanel::restoreOriginalPrompt);
    return row;
}

QGroupBox* ParametersPanel::buildNegativePromptBox() {
    auto* box = new QGroupBox(tr("Negative prompt"), this);
    auto* layout = new QVBoxLayout(box);
    negative_ = new QPlainTextEdit(box);
    negative_->setObjectName(QStringLiteral("negativePromptEdit"));
    negative_->setPlaceholderText(tr("Describe what the video should avoid"));
    negative_->setTabChangesFocus(true);
    negative_->setPlainText(QString::fromUtf8(kDefaultNegativePrompt));
    negative_->setMinimumHeight(54);
    layout->addWidget(negative_, 1);
    auto* reset = new QToolButton(box);
    reset->setObjectName(QStringLiteral("resetNegativeButton"));
    reset->setText(tr("Reset to default"));
    layout->addWidget(reset, 0, Qt::AlignRight);

    connect(reset, &QToolButton::clicked, this, &ParametersPanel::resetNegativePrompt);
    return box;
}

QGroupBox* ParametersPanel::buildParametersBox() {
    auto* box = new QGroupBox(tr("Parameters"), this);
    auto* form = new QFormLayout(box);
    form->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);
    addSizeAndLengthFields(form, box);
    addGuidanceFields(form, box);
    addExpertFields(form, box);
    parametersForm_ = form;
    form->addRow(tr("Seed"), buildSeedRow(box));
    form->addRow(tr("Solver / preset"), buildSolverRow(box));
    loras_ = new LoraListWidget(box);
    loras_->setObjectName(QStringLiteral("loraList"));
    form->addRow(tr("LoRAs"), loras_);
    showExpertFields(false);
    auto* defaults = new QToolButton(box);
    defaults->setObjectName(QStringLiteral("modelDefaultsButton"));
    defaults->setText(tr("Model defaults"));
    form->addRow(QString(), defaults);

    connect(defaults, &QToolButton::clicked, this, &ParametersPanel::resetToModelDefaults);
    return box;
}

void ParametersPanel::addSizeAndLengthFields(QFormLayout* form, QWidget* box) {
    size_ = new QComboBox(box);
    size_->setObjectName(QStringLiteral("sizeCombo"));
    size_->setToolTip(tr("Width*Height; the list holds the sizes the loaded model was trained for"));
    form->addRow(tr("Resolution (W*H)"), size_);
    frames_ = new QSpinBox(box);
    frames_->setObjectName(QStringLiteral("framesSpin"));
    frames_->setRange(1, 1001);
    frames_->setSingleStep(4);
    frames_->setValue(81);
    frames_->setToolTip(tr("Number of frames, 4n+1 (81 frames = 5 s at 16 fps)"));
    form->addRow(tr("Frames"), frames_);
    steps_ = new QSpinBox(box);
    steps_->setObjectName(QStringLiteral("stepsSpin"));
    steps_->setRange(1, 1000);
    steps_->setValue(50);
    form->addRow(tr("Diffusion steps"), steps_);

    connect(frames_, &QSpinBox::editingFinished, this, [this] {
        const int v = frames_->value();  // snap to 4n+1
        frames_->setValue(((v - 1 + 2) / 4) * 4 + 1);
    });
    connect(steps_, QOverload<int>::of(&QSpinBox::valueChanged), this, [this](int v) {
        // A step count that is not the list's length: the user chose evenly spaced steps instead.
        if (static_cast<size_t>(v) != denoisingSteps_.size()) denoisingSteps_.clear();
    });
}

void ParametersPanel::addGuidanceFields(QFormLayout* form, QWidget* box) {
    guide_ = new QDoubleSpinBox(box);
    guide_->setObjectName(QStringLiteral("guideSpin"));
    guide_->setRange(0.0, 20.0);
    guide_->setSingleStep(0.5);
    guide_->setDecimals(2);
    guide_->setValue(5.0);
    form->addRow(tr("Guide scale"), guide_);
    shift_ = new QDoubleSpinBox(box);
    shift_->setObjectName(QStringLiteral("shiftSpin"));
    shift_->setRange(0.01, 20.0);
    shift_->setSingleStep(0.5);
    shift_->setDecimals(2);
    shift_->setValue(5.0);
    form->addRow(tr("Shift"), shift_);
}

void ParametersPanel::addExpertFields(QFormLayout* form, QWidget* box) {
    // Wan2.2 A14B: the high-noise expert runs the early steps (t ≥ boundary·1000) with its own guide; the
    // guide field above is then the low-noise expert's (upstream's pair is (low, high)).
    guideHigh_ = new QDoubleSpinBox(box);
    guideHigh_->setObjectName(QStringLiteral("guideHighSpin"));
    guideHigh_->setRange(0.0, 20.0);
    guideHigh_->setSingleStep(0.5);
    guideHigh_->setDecimals(2);
    guideHigh_->setValue(4.0);
    guideHigh_->setToolTip(tr("Guide scale of the high-noise expert (the early steps)"));
    form->addRow(tr("Guide scale (high noise)"), guideHigh_);
    boundary_ = new QDoubleSpinBox(box);
    boundary_->setObjectName(QStringLiteral("boundarySpin"));
    boundary_->setRange(0.0, 1.0);
    boundary_->setSingleStep(0.005);
    boundary_->setDecimals(3);
    boundary_->setValue(0.875);
    boundary_->setToolTip(tr("The high-noise expert runs while the timestep t ≥ boundary × 1000, the low-noise "
                             "expert after"));
    form->addRow(tr("Expert boundary"), boundary_);
}

void ParametersPanel::showExpertFields(bool twoExperts) {
    parametersForm_->setRowVisible(guideHigh_, twoExperts);
    parametersForm_->setRowVisible(boundary_, twoExperts);
    if (auto* label = qobject_cast<QLabel*>(parametersForm_->labelForField(guide_)))
        label->setText(twoExperts ? tr("Guide scale (low noise)") : tr("Guide scale"));
    guide_->setToolTip(twoExperts ? tr("Guide scale of the low-noise expert (the late steps)") : QString());
    loras_->setTwoExperts(twoExperts);
}

QVBoxLayout* ParametersPanel::buildSeedRow(QWidget* box) {
    // The seed field and "Reuse" on one line, the last seed used under them (19 digits would otherwise widen
    // the column past the window's left pane after the first random seed).
    auto* row = new QVBoxLayout;
    row->setSpacing(2);
    auto* line = new QHBoxLayout;
    seed_ = new SeedSpinBox(box);
    seed_->setObjectName(QStringLiteral("seedSpin"));
    seed_->setValue(-1);
    line->addWidget(seed_, 1);
    useSeed_ = new QPushButton(tr("Reuse"), box);
    useSeed_->setObjectName(QStringLiteral("useSeedButton"));
    useSeed_->setToolTip(tr("Copy the seed of the last generation into the seed field"));
    useSeed_->setEnabled(false);
    line->addWidget(useSeed_);
    row->addLayout(line);
    lastSeedLabel_ = new QLabel(box);
    lastSeedLabel_->setObjectName(QStringLiteral("lastSeedLabel"));
    lastSeedLabel_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    lastSeedLabel_->setVisible(false);
    row->addWidget(lastSeedLabel_);

    connect(useSeed_, &QPushButton::clicked, this, [this] {
        if (lastSeed_ >= 0) seed_->setValue(lastSeed_);
    });
    return row;
}

QHBoxLayout* ParametersPanel::buildSolverRow(QWidget* box) {
    solver_ = new QComboBox(box);
    solver_->setObjectName(QStringLiteral("solverCombo"));
    solver_->addItem(QStringLiteral("UniPC"), QStringLiteral("unipc"));
    solver_->addItem(QStringLiteral("DPM++"), QStringLiteral("dpm++"));
    solver_->addItem(QStringLiteral("Euler"), QStringLiteral("euler"));
    preset_ = new QComboBox(box);
    preset_->setObjectName(QStringLiteral("presetCombo"));
    preset_->addItem(tr("(none)"), QString());
    for (const SamplingPreset& p : sampling_presets()) {
        preset_->addItem(QString::fromStdString(p.name), QString::fromStdString(p.name));
        preset_->setItemData(preset_->count() - 1, QString::fromStdString(p.description), Qt::ToolTipRole);
    }
    preset_->setToolTip(tr("Fills solver, steps, shift and guide scale; the fields stay editable"));
    auto* row = new QHBoxLayout;
    row->addWidget(solver_, 1);
    row->addWidget(preset_, 1);

    connect(preset_, QOverload<int>::of(&QComboBox::activated), this, &ParametersPanel::applyPreset);
    return row;
}

QGroupBox* ParametersPanel::buildOutputBox() {
    auto* box = new QGroupBox(tr("Output folder"), this);
    auto* row = new QHBoxLayout(box);
    output_ = new QLineEdit(box);
    output_->setObjectName(QStringLiteral("outputFolderEdit"));
    auto* browse = new QToolButton(box);
    browse->setText(tr("Browse…"));
    row->addWidget(output_, 1);
    row->addWidget(browse);

    connect(browse, &QToolButton::clicked, this, &ParametersPanel::browseOutputFolder);
    connect(output_, &QLineEdit::editingFinished, this, [this] { emit outputFolderChanged(outputFolder()); });
    return box;
}

GenerationRequest ParametersPanel::request() const {
    GenerationRequest r;
    r.prompt = prompt_->toPlainText().trimmed().toStdString();
    r.negative_prompt = negative_->toPlainText().trimmed().toStdString();
    const QStringList wh = size_->currentData().toString().split(QLatin1Char('*'));
    if (wh.size() == 2) {
        r.width = wh[0].toInt();
        r.height = wh[1].toInt();
    }
    r.frame_num = frames_->value();
    r.sample_steps = steps_->value();
    r.guide_scale = guide_->value();
    if (info_.two_experts) {  // the pair --sample-guide-scale LOW,HIGH fills, and --boundary
        r.guide_scale_high = guideHigh_->value();
        r.boundary = boundary_->value();
    }
    r.sample_shift = shift_->value();
    r.seed = seed_->value();
    r.solver = solver_->currentData().toString().toStdString();
    if (r.solver == "euler") r.denoising_steps = denoisingSteps_;
    r.preset = preset_->currentData().toString().toStdString();
    r.loras = loras_->loras(LoraExpert::Both);
    if (info_.two_experts) {  // --lora-high / --lora-low; a one-expert model refuses them
        r.loras_high = loras_->loras(LoraExpert::HighNoise);
        r.loras_low = loras_->loras(LoraExpert::LowNoise);
    }
    r.extend_target_lang = extendLang_->currentData().toString().toStdString();
    if (!originalPrompt_.isEmpty() && originalPrompt_.trimmed().toStdString() != r.prompt)
        r.original_prompt = originalPrompt_.toStdString();
    return r;
}

GenerationRequest ParametersPanel::savedRequest() const {
    GenerationRequest r = request();
    r.loras_high = loras_->loras(LoraExpert::HighNoise);
    r.loras_low = loras_->loras(LoraExpert::LowNoise);
    return r;
}

void ParametersPanel::setRequest(const GenerationRequest& r) {
    if (!haveInfo_) pending_ = r;
    prompt_->setPlainText(QString::fromStdString(r.prompt));
    prompt_->moveCursor(QTextCursor::End);
    originalPrompt_ = QString::fromStdString(r.original_prompt);
    if (!originalPrompt_.isEmpty()) {
        extendStatus_->setText(tr("Enhanced from: %1").arg(originalPrompt_));
        extendStatus_->setVisible(true);
        restore_->setVisible(true);
    } else {
        extendStatus_->setVisible(false);
        restore_->setVisible(false);
    }
    negative_->setPlainText(r.negative_prompt.empty() ? QString::fromUtf8(kDefaultNegativePrompt)
                                                      : QString::fromStdString(r.negative_prompt));
    const bool d = haveInfo_;
    if (r.width > 0 && r.height > 0) selectSize(r.width, r.height);
    else if (d) selectSize(info_.default_width, info_.default_height);
    if (r.frame_num > 0) frames_->setValue(r.frame_num);
    else if (d) frames_->setValue(info_.default_frames);
    if (r.sample_steps > 0) steps_->setValue(r.sample_steps);
    else if (d) steps_->setValue(info_.default_steps);
    if (r.guide_scale >= 0) guide_->setValue(r.guide_scale);
    else if (d) guide_->setValue(info_.default_guide_scale);
    if (r.sample_shift > 0) shift_->setValue(r.sample_shift);
    else if (d) shift_->setValue(info_.default_shift);
    if (r.guide_scale_high >= 0) guideHigh_->setValue(r.guide_scale_high);
    else if (r.guide_scale >= 0) guideHigh_->setValue(r.guide_scale);  // one value set both (as the CLI's X)
    else if (d) guideHigh_->setValue(info_.default_guide_scale_high);
    if (r.boundary >= 0) boundary_->setValue(r.boundary);
    else if (d && info_.default_boundary > 0) boundary_->setValue(info_.default_boundary);
    seed_->setValue(r.seed >= 0 ? r.seed : -1);
    const int solverIndex = solver_->findData(QString::fromStdString(r.solver));
    solver_->setCurrentIndex(solverIndex >= 0 ? solverIndex : 0);
    const int presetIndex = preset_->findData(QString::fromStdString(r.preset));
    preset_->setCurrentIndex(presetIndex >= 0 ? presetIndex : 0);
    denoisingSteps_ = r.denoising_steps;
    if (!denoisingSteps_.empty()) steps_->setValue(static_cast<int>(denoisingSteps_.size()));
    loras_->setLoras(r.loras, r.loras_high, r.loras_low);
    const int langIndex = extendLang_->findData(QString::fromStdString(r.extend_target_lang));
    if (langIndex >= 0) extendLang_->setCurrentIndex(langIndex);
}

void ParametersPanel::selectSize(int width, int height) {
    const QString text = sizeText(width, height);
    int index = size_->findData(text);
    if (index < 0) {
        if (haveInfo_ && !info_.sizes.empty()) {
            // Not a size of this model: fall back to its default.
            index = size_->findData(sizeText(info_.default_width, info_.default_height));
            if (index < 0) index = 0;
        } else {
            size_->addItem(text, text);  // before the model is known: keep what was asked
            index = size_->count() - 1;
        }
    }
    size_->setCurrentIndex(index);
}

void ParametersPanel::setEngineInfo(const EngineInfo& info) {
    const GenerationRequest current = request();
    const bool first = !haveInfo_;
    const bool expertsChanged = info.two_experts != info_.two_experts;
    info_ = info;
    haveInfo_ = true;
    showExpertFields(info.two_experts);
    if (info.two_experts && (expertsChanged || first)) {
        // Another kind of model: its pair and switch, unless the pre-start request set them.
        const GenerationRequest& p = pending_;
        if (!first || p.guide_scale_high < 0) guideHigh_->setValue(info.default_guide_scale_high);
        if (!first || p.boundary < 0) boundary_->setValue(info.default_boundary > 0 ? info.default_boundary : 0.875);
        if (!first) guide_->setValue(info.default_guide_scale);
    }
    size_->clear();
    std::vector<std::string> sizes = info.sizes;
    if (sizes.empty()) sizes.push_back(sizeText(info.default_width, info.default_height).toStdString());
    for (const std::string& s : sizes) {
        const QString q = QString::fromStdString(s);
        size_->addItem(q, q);
    }
    if (current.width > 0 && current.height > 0) selectSize(current.width, current.height);
    else selectSize(info.default_width, info.default_height);
    if (first) {
        // Fields the pre-start request left unset take this model's defaults; the others keep their value.
        const GenerationRequest& p = pending_;
        if (p.frame_num <= 0) frames_->setValue(info.default_frames);
        if (p.sample_steps <= 0) steps_->setValue(info.default_steps);
        if (p.guide_scale < 0) guide_->setValue(info.default_guide_scale);
        if (p.sample_shift <= 0) shift_->setValue(info.default_shift);
    }
}

void ParametersPanel::resetToModelDefaults() {
    if (!haveInfo_) return;
    selectSize(info_.default_width, info_.default_height);
    frames_->setValue(info_.default_frames);
    steps_->setValue(info_.default_steps);
    guide_->setValue(info_.default_guide_scale);
    guideHigh_->setValue(info_.default_guide_scale_high);
    if (info_.default_boundary > 0) boundary_->setValue(info_.default_boundary);
    shift_->setValue(info_.default_shift);
    seed_->setValue(-1);
    solver_->setCurrentIndex(0);
    preset_->setCurrentIndex(0);
    denoisingSteps_.clear();
    resetNegativePrompt();
}

void ParametersPanel::applyPreset(int index) {
    const std::string name = preset_->itemData(index).toString().toStdString();
    if (name.empty()) return;
    GenerationRequest r;
    apply_sampling_preset(find_sampling_preset(name, "preset"), r);
    solver_->setCurrentIndex(std::max(0, solver_->findData(QString::fromStdString(r.solver))));
    // Fields the preset leaves to the model take the loaded model's values.
    steps_->setValue(r.sample_steps > 0 ? r.sample_steps : info_.default_steps);
    shift_->setValue(r.sample_shift > 0 ? r.sample_shift : info_.default_shift);
    guide_->setValue(r.guide_scale >= 0 ? r.guide_scale : info_.default_guide_scale);
    denoisingSteps_ = r.denoising_steps;  // after the steps edit, which would clear it
}

QString ParametersPanel::outputFolder() const { return output_->text().trimmed(); }

void ParametersPanel::setOutputFolder(const QString& folder) { output_->setText(folder); }

void ParametersPanel::browseOutputFolder() {
    const QString folder = QFileDialog::getExistingDirectory(this, tr("Output folder"), outputFolder());
    if (folder.isEmpty()) return;
    output_->setText(folder);
    emit outputFolderChanged(folder);
}

void ParametersPanel::setLastSeed(qint64 seed) {
    lastSeed_ = seed;
    lastSeedLabel_->setText(seed >= 0 ? tr("last: %1").arg(seed) : QString());
    lastSeedLabel_->setVisible(seed >= 0);
    useSeed_->setEnabled(seed >= 0);
}

void ParametersPanel::setEngineReady(bool ready) {
    ready_ = ready;
    enhance_->setEnabled(ready && !extending_);
}

void ParametersPanel::onPromptExtended(const QString& original, const QString& extended) {
    extending_ = false;
    enhance_->setText(tr("Enhance prompt"));
    enhance_->setEnabled(ready_);
    if (originalPrompt_.isEmpty()) originalPrompt_ = original;  // enhancing twice keeps the user's text
    prompt_->setPlainText(extended);
    prompt_->moveCursor(QTextCursor::End);  // ready to be edited further
    extendStatus_->setText(tr("Enhanced from: %1").arg(originalPrompt_));
    extendStatus_->setStyleSheet(QString());
    extendStatus_->setVisible(true);
    restore_->setVisible(true);
}

void ParametersPanel::onExtendFailed(const QString&, const QString& reason) {
    extending_ = false;
    enhance_->setText(tr("Enhance prompt"));
    enhance_->setEnabled(ready_);
    extendStatus_->setText(tr("Prompt enhancement failed: %1").arg(reason));
    extendStatus_->setStyleSheet(QStringLiteral("color: #c0392b;"));
    extendStatus_->setVisible(true);
}

void ParametersPanel::resetNegativePrompt() { negative_->setPlainText(QString::fromUtf8(kDefaultNegativePrompt)); }

void ParametersPanel::restoreOriginalPrompt() {
    if (originalPrompt_.isEmpty()) return;
    const QString original = originalPrompt_;
    originalPrompt_.clear();
    prompt_->setPlainText(original);
    extendStatus_->setVisible(false);
    restore_->setVisible(false);
}

}  // namespace wan::app
