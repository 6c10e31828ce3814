// The left column: prompt (with "Enhance prompt"), negative prompt, size, frames, steps, guide scale (for a
// two-expert model, Wan2.2 A14B: the low- and high-noise guides and the boundary), shift, seed, solver, LoRAs
// (for a two-expert model, each for both experts or one), output folder.
// Ref: wan21-reference.md §10.2 (the Gradio fields this replaces).
#pragma once

#include "core/core.h"
#include "ui/lora_list_widget.h"
#include "ui/seed_spin_box.h"

#include <QString>
#include <QWidget>

class QComboBox;
class QDoubleSpinBox;
class QFormLayout;
class QGroupBox;
class QHBoxLayout;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QPushButton;
class QSpinBox;
class QToolButton;
class QVBoxLayout;

namespace wan::app {

class ParametersPanel : public QWidget {
    Q_OBJECT
public:
    explicit ParametersPanel(QWidget* parent = nullptr);

    /// The request the fields describe (output_dir not set; the window adds it): the loaded model's job, so the
    /// fields a one-expert model hides (the guide pair, the boundary, per-expert LoRAs) are left out.
    GenerationRequest request() const;
    /// What the settings keep: request() with the per-expert LoRAs even while the model hides them (or before
    /// it is known), so that they are there again with the next two-expert model.
    GenerationRequest savedRequest() const;
    /// Fills every field from a request (a 0 / negative field keeps the model default).
    void setRequest(const GenerationRequest& request);
    /// The loaded model: the size list (EngineInfo.sizes) and defaults for fields that are unset.
    void setEngineInfo(const EngineInfo& info);
    /// Every parameter back to the loaded model's defaults (the prompt stays).
    void resetToModelDefaults();

    QString outputFolder() const;
    void setOutputFolder(const QString& folder);

    /// The seed of the last finished job, offered to be copied back into the seed field.
    void setLastSeed(qint64 seed);
    qint64 lastSeed() const { return lastSeed_; }
    /// The user's text before "Enhance prompt" (empty when the prompt was not extended).
    QString originalPrompt() const { return originalPrompt_; }

    // Widgets, for the window's focus handling and for tests.
    QPlainTextEdit* promptEdit() const { return prompt_; }
    QPlainTextEdit* negativePromptEdit() const { return negative_; }
    QComboBox* sizeCombo() const { return size_; }
    QSpinBox* framesSpin() const { return frames_; }
    QSpinBox* stepsSpin() const { return steps_; }
    /// The guide scale; with a two-expert model the low-noise expert's.
    QDoubleSpinBox* guideSpin() const { return guide_; }
    /// Two-expert models only (hidden otherwise): the high-noise expert's guide and the switch t ≥ boundary·1000.
    QDoubleSpinBox* guideHighSpin() const { return guideHigh_; }
    QDoubleSpinBox* boundarySpin() const { return boundary_; }
    /// Whether the fields show a two-expert model (the guide pair and the boundary).
    bool showsTwoExperts() const { return info_.two_experts; }
    QDoubleSpinBox* shiftSpin() const { return shift_; }
    SeedSpinBox* seedSpin() const { return seed_; }
    QComboBox* solverCombo() const { return solver_; }
    QComboBox* presetCombo() const { return preset_; }
    LoraListWidget* loraList() const { return loras_; }
    QComboBox* extendLanguageCombo() const { return extendLang_; }
    QPushButton* enhanceButton() const { return enhance_; }
    QPushButton* useSeedButton() const { return useSeed_; }
    QLabel* lastSeedLabel() const { return lastSeedLabel_; }
    QLabel* extendStatusLabel() const { return extendStatus_; }
    QLineEdit* outputFolderEdit() const { return output_; }

public slots:
    void setEngineReady(bool ready);
    void onPromptExtended(const QString& original, const QString& extended);
    void onExtendFailed(const QString& original, const QString& reason);
    void resetNegativePrompt();
    void restoreOriginalPrompt();

signals:
    /// "Enhance prompt" pressed: the window forwards it to EngineSession::extendPrompt.
    void enhanceRequested(const QString& prompt, const QString& targetLang, qint64 seed);
    void outputFolderChanged(const QString& folder);

private:
    // One builder per group box of the column (and per row that has its own behaviour); each creates its
    // widgets, wires their signals and returns the box or row for the caller to place.
    QGroupBox* buildPromptBox();
    QHBoxLayout* buildEnhanceRow(QWidget* box);
    QHBoxLayout* buildExtendStatusRow(QWidget* box);
    QGroupBox* buildNegativePromptBox();
    QGroupBox* buildParametersBox();
    void addSizeAndLengthFields(QFormLayout* form, QWidget* box);
    void addGuidanceFields(QFormLayout* form, QWidget* box);
    void addExpertFields(QFormLayout* form, QWidget* box);
    /// Shows the two-expert rows and the LoRAs' Expert column (and names the guide the low-noise one) or hides them.
    void showExpertFields(bool twoExperts);
    QVBoxLayout* buildSeedRow(QWidget* box);
    QHBoxLayout* buildSolverRow(QWidget* box);
    QGroupBox* buildOutputBox();

    void selectSize(int width, int height);
    /// Fills solver, steps, shift and guide from the preset at `index` of the preset box (0: none).
    void applyPreset(int index);
    void browseOutputFolder();

    QPlainTextEdit* prompt_ = nullptr;
    QComboBox* extendLang_ = nullptr;
    QPushButton* enhance_ = nullptr;
    QLabel* extendStatus_ = nullptr;
    QToolButton* restore_ = nullptr;
    QPlainTextEdit* negative_ = nullptr;
    QComboBox* size_ = nullptr;
    QSpinBox* frames_ = nullptr;
    QSpinBox* steps_ = nullptr;
    QDoubleSpinBox* guide_ = nullptr;
    QDoubleSpinBox* guideHigh_ = nullptr;
    QDoubleSpinBox* boundary_ = nullptr;
    QFormLayout* parametersForm_ = nullptr;
    QDoubleSpinBox* shift_ = nullptr;
    SeedSpinBox* seed_ = nullptr;
    QLabel* lastSeedLabel_ = nullptr;
    QPushButton* useSeed_ = nullptr;
    QComboBox* solver_ = nullptr;
    QComboBox* preset_ = nullptr;
    LoraListWidget* loras_ = nullptr;
    QLineEdit* output_ = nullptr;
    std::vector<int> denoisingSteps_;  ///< euler's step list from a preset or a request; dropped on a steps edit

    EngineInfo info_;
    GenerationRequest pending_;  // the last setRequest() before the model was known
    bool haveInfo_ = false;
    bool ready_ = false;
    bool extending_ = false;
    QString originalPrompt_;
    qint64 lastSeed_ = -1;
};

}  // namespace wan::app
