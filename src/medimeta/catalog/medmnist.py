"""Facts about the twelve MedMNIST 2D collections, kept as data.

Sources: the ``medmnist`` package's ``INFO`` (task type, label names, channels, licence) and
PEERS.md §1.1 (sample counts of ``medmnist`` 3.0.2, which removed a few blank Organ{A,C,S}
samples in 2.2.4). MD5s are listed only where this project's reference material publishes the
full value; any other file is converted with its MD5 recorded but not checked.

``domain`` uses the MedIMeta domain names; ``overlaps`` lists MedIMeta datasets built from the
same source images (a MedMNIST collection must not be used to evaluate a model trained on them).
"""

from __future__ import annotations

from dataclasses import dataclass

from medimeta.catalog.tasks import TaskTarget

SIZES = (28, 64, 128, 224)
HOMEPAGE = "https://medmnist.com/"
PAPER_DOI_URL = "https://doi.org/10.1038/s41597-022-01721-8"
PAPER_TITLE = (
    "MedMNIST v2 - A large-scale lightweight benchmark for 2D and 3D biomedical image "
    "classification"
)
AUTHORS = (
    "Jiancheng Yang, Rui Shi, Donglai Wei, Zequan Liu, Lin Zhao, Bilian Ke, Hanspeter Pfister, "
    "Bingbing Ni"
)
CITATION = (
    "Yang, J., Shi, R., Wei, D., Liu, Z., Zhao, L., Ke, B., Pfister, H., Ni, B. MedMNIST v2 - A "
    "large-scale lightweight benchmark for 2D and 3D biomedical image classification. "
    "Scientific Data 10, 41 (2023)."
)

#: ``medmnist`` task strings -> MedIMeta task targets.
TASK_TYPES = {
    "multi-class": TaskTarget.MULTICLASS_CLASSIFICATION,
    "binary-class": TaskTarget.BINARY_CLASSIFICATION,
    "multi-label, binary-class": TaskTarget.MULTILABEL_CLASSIFICATION,
    "ordinal-regression": TaskTarget.ORDINAL_REGRESSION,
}

#: Published MD5 of ``{flag}.npz`` (28 px) / ``{flag}_{size}.npz``, by file name.
KNOWN_MD5 = {
    "breastmnist.npz": "750601b1f35ba3300ea97c75c52ff8f6",
}


@dataclass(frozen=True)
class MedMNISTInfo:
    """One MedMNIST 2D collection."""

    flag: str
    python_class: str
    task: str
    task_name: str
    labels: tuple[str, ...]
    channels: int
    n_samples: tuple[int, int, int]
    license: str
    domain: str
    overlaps: tuple[str, ...] = ()

    @property
    def target(self) -> TaskTarget:
        return TASK_TYPES[self.task]

    @property
    def label_dict(self) -> dict[int, str]:
        return dict(enumerate(self.labels))

    def file_name(self, size: int) -> str:
        """``breastmnist.npz`` for 28 px, ``breastmnist_224.npz`` otherwise."""
        return f"{self.flag}.npz" if size == 28 else f"{self.flag}_{size}.npz"


_ORGANS = (
    "bladder", "femur-left", "femur-right", "heart", "kidney-left", "kidney-right", "liver",
    "lung-left", "lung-right", "pancreas", "spleen",
)  # fmt: skip

_TABLE = (
    MedMNISTInfo(
        "pathmnist", "PathMNIST", "multi-class", "tissue class",
        ("adipose", "background", "debris", "lymphocytes", "mucus", "smooth muscle",
         "normal colon mucosa", "cancer-associated stroma",
         "colorectal adenocarcinoma epithelium"),
        3, (89_996, 10_004, 7_180), "CC BY 4.0", "Histopathology", ("crc",),
    ),
    MedMNISTInfo(
        "chestmnist", "ChestMNIST", "multi-label, binary-class", "disease labels",
        ("atelectasis", "cardiomegaly", "effusion", "infiltration", "mass", "nodule",
         "pneumonia", "pneumothorax", "consolidation", "edema", "emphysema", "fibrosis",
         "pleural", "hernia"),
        1, (78_468, 11_219, 22_433), "CC BY 4.0", "Chest X-ray", ("cxr",),
    ),
    MedMNISTInfo(
        "dermamnist", "DermaMNIST", "multi-class", "disease class",
        ("actinic keratoses and intraepithelial carcinoma", "basal cell carcinoma",
         "benign keratosis-like lesions", "dermatofibroma", "melanoma", "melanocytic nevi",
         "vascular lesions"),
        3, (7_007, 1_003, 2_005), "CC BY-NC 4.0", "Dermatoscopy", ("derm",),
    ),
    MedMNISTInfo(
        "octmnist", "OCTMNIST", "multi-class", "disease class",
        ("choroidal neovascularization", "diabetic macular edema", "drusen", "normal"),
        1, (97_477, 10_832, 1_000), "CC BY 4.0", "OCT", ("oct",),
    ),
    MedMNISTInfo(
        "pneumoniamnist", "PneumoniaMNIST", "binary-class", "pneumonia",
        ("normal", "pneumonia"),
        1, (4_708, 524, 624), "CC BY 4.0", "Chest X-ray", ("pneumonia",),
    ),
    MedMNISTInfo(
        "retinamnist", "RetinaMNIST", "ordinal-regression", "DR level",
        ("0", "1", "2", "3", "4"),
        3, (1_080, 120, 400), "CC BY 4.0", "Retinal fundus", ("dr_regular",),
    ),
    MedMNISTInfo(
        "breastmnist", "BreastMNIST", "binary-class", "malignancy",
        ("malignant", "normal, benign"),
        1, (546, 78, 156), "CC BY 4.0", "Breast ultrasound", ("bus",),
    ),
    MedMNISTInfo(
        "bloodmnist", "BloodMNIST", "multi-class", "cell class",
        ("basophil", "eosinophil", "erythroblast",
         "immature granulocytes(myelocytes, metamyelocytes and promyelocytes)", "lymphocyte",
         "monocyte", "neutrophil", "platelet"),
        3, (11_959, 1_712, 3_421), "CC BY 4.0", "Microscopy", ("pbc",),
    ),
    MedMNISTInfo(
        "tissuemnist", "TissueMNIST", "multi-class", "cell type",
        ("Collecting Duct, Connecting Tubule", "Distal Convoluted Tubule",
         "Glomerular endothelial cells", "Interstitial endothelial cells", "Leukocytes",
         "Podocytes", "Proximal Tubule Segments", "Thick Ascending Limb"),
        1, (165_466, 23_640, 47_280), "CC BY 4.0", "Kidney cortex microscopy",
    ),
    MedMNISTInfo(
        "organamnist", "OrganAMNIST", "multi-class", "organ class", _ORGANS,
        1, (34_561, 6_491, 17_778), "CC BY 4.0", "Abdominal CT", ("organs_axial",),
    ),
    MedMNISTInfo(
        "organcmnist", "OrganCMNIST", "multi-class", "organ class", _ORGANS,
        1, (12_975, 2_392, 8_216), "CC BY 4.0", "Abdominal CT", ("organs_coronal",),
    ),
    MedMNISTInfo(
        "organsmnist", "OrganSMNIST", "multi-class", "organ class", _ORGANS,
        1, (13_932, 2_452, 8_827), "CC BY 4.0", "Abdominal CT", ("organs_sagittal",),
    ),
)  # fmt: skip

MEDMNIST_2D: dict[str, MedMNISTInfo] = {m.flag: m for m in _TABLE}
