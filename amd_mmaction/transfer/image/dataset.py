"""Image classification data sets (ImageNet-style) for mmaction2 pipelines.

An image is a one-frame clip: every sample carries ``clip_len=1`` and
``num_clips=1`` so that mmaction2's ``ImageDecode`` -> crops -> ``FormatShape
('NCTHW')`` give (1, C, 1, H, W) and the video model and preprocessor run
unchanged.
"""
import os
import os.path as osp
from typing import List

from mmengine.fileio import exists, list_from_file

from mmaction.datasets import BaseActionDataset
from mmaction.registry import DATASETS
from amd_mmaction.data.lists import MAX_REPORTED, file_problem, format_errors

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')


@DATASETS.register_module()
class ImageListDataset(BaseActionDataset):
    """Images listed in an annotation file or arranged in class folders.

    * List mode (``ann_file`` given): lines ``<relative path> <label>``,
      paths relative to ``data_prefix['img']``.
    * Folder mode (``ann_file=''``): ``data_prefix['img']/<class>/<image>``,
      classes sorted by name get labels 0, 1, ... (ImageNet's ``train/``
      and ``val/`` layouts); the class names go to ``metainfo['classes']``.

    Args:
        ann_file: list file, or '' for folder mode.
        pipeline: transforms, usually starting with ``ImageDecode``.
        data_prefix: ``dict(img=<image root>)``.
        delimiter: separator of the list file's columns.
        check_files: list mode: a listed image that is missing or 0 bytes
            is a bad line, reported with the others before any training
            (one ``stat`` per image; False skips it).
    """

    # a line without a label is refused while parsing, so a -1 was written as a label
    LINE_WITHOUT_LABEL = None

    def __init__(self, ann_file: str, pipeline, data_prefix: dict = dict(img=''),
                 delimiter: str = ' ', check_files: bool = True, **kwargs):
        self.delimiter = delimiter
        self.check_files = check_files
        super().__init__(ann_file, pipeline=pipeline, data_prefix=data_prefix,
                         modality='RGB', **kwargs)

    def _sample(self, path: str, label: int, **extra) -> dict:
        return dict(filename=path, label=label, clip_len=1, num_clips=1,
                    total_frames=1, frame_inds=[0], **extra)

    def load_data_list(self) -> List[dict]:
        root = self.data_prefix.get('img') or ''
        if self.ann_file:
            return self._from_list(root)
        return self._from_folders(root)

    def _from_list(self, root: str) -> List[dict]:
        if not exists(self.ann_file):
            raise FileNotFoundError(f'image list {self.ann_file!r} does not exist')
        data, errors, total = [], [], 0
        for n, line in enumerate(list_from_file(self.ann_file), start=1):
            if not line.strip():
                continue
            parts = line.strip().rsplit(self.delimiter, 1)
            problem = None
            if len(parts) != 2 or not parts[1].lstrip('-').isdigit():
                problem = f'expected "<path> <int label>", got {line.strip()!r}'
            elif self.check_files:
                problem = file_problem(osp.join(root, parts[0]), 'image')
            if problem:
                total += 1
                if len(errors) < MAX_REPORTED:
                    errors.append(f'{self.ann_file}:{n}: {problem}')
                continue
            # list_line: DataListCheckHook names file:line for a label the head cannot take
            data.append(self._sample(osp.join(root, parts[0]), int(parts[1]), list_line=n))
        if errors:
            raise ValueError(format_errors(self.ann_file, errors, total))
        if not data:
            raise ValueError(f'image list {self.ann_file!r} is empty')
        return data

    def _from_folders(self, root: str) -> List[dict]:
        if not root or not osp.isdir(root):
            raise FileNotFoundError(
                f"image folder {root!r} does not exist (folder mode: ann_file='' and "
                "data_prefix=dict(img=<root with one sub-folder per class>))")
        classes = sorted(d for d in os.listdir(root) if osp.isdir(osp.join(root, d)))
        if not classes:
            raise ValueError(f'image folder {root!r} has no class sub-folders')
        data = []
        for label, name in enumerate(classes):
            for dirpath, _, files in sorted(os.walk(osp.join(root, name))):
                for f in sorted(files):
                    if f.lower().endswith(IMG_EXTENSIONS):
                        data.append(self._sample(osp.join(dirpath, f), label))
        if not data:
            raise ValueError(f'image folder {root!r} holds no {IMG_EXTENSIONS} files')
        self._metainfo['classes'] = tuple(classes)
        return data

