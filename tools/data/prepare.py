"""From the official data set downloads to checked mmaction2 lists.

    python tools/data/prepare.py ssv2     --ann-dir DIR --out data/sthv2 [--video-dir DIR]
    python tools/data/prepare.py kinetics --ann-dir DIR --out data/kinetics400 [--version 400]
    python tools/data/prepare.py ucf101   --ann-dir ucfTrainTestlist --out data/ucf101
    python tools/data/prepare.py hmdb51   --ann-dir testTrainMulti_7030_splits --out data/hmdb51
    python tools/data/prepare.py ava      --ann-dir ava_v2.2 --out data/ava [--workers 2]
    python tools/data/prepare.py scan     LIST --video-root DIR | --config CFG [--workers 2]

Every builder takes ``--scan`` to scan the lists it wrote. Existing lists are
never replaced by different content without ``--force``. Exit status: 0 done,
1 a problem with the input or the command line (``error: ...``), 3 ``scan
--strict`` found bad clips, 130 interrupted (rerun to resume). See docs/data.md.
"""
import argparse
import os
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

from amd_mmaction.data.prepare import (PrepareError, prepare_ava, prepare_hmdb51,  # noqa: E402
                                        prepare_kinetics, prepare_ssv2, prepare_ucf101,
                                        scan_list, settings_from_config)
from amd_mmaction.data.prepare.common import Interrupted  # noqa: E402
from amd_mmaction.data.prepare.scan import BACKENDS, SAMPLERS, summary_line  # noqa: E402


def _scan_options(p: argparse.ArgumentParser, builder: bool) -> None:
    g = p.add_argument_group('scan' if not builder else 'scan the written lists (--scan)')
    if builder:
        g.add_argument('--scan', action='store_true',
                       help='scan every list written (decode each clip, check its length)')
    g.add_argument('--config', help='take the sampler span, backend (and, for the scan '
                   'command, the list and video folder) from this mmaction2 config')
    if not builder:
        g.add_argument('--split', default='train', choices=('train', 'val', 'test'),
                       help="the config's <split>_dataloader (default train)")
    g.add_argument('--backend', choices=BACKENDS, help='decoder the training uses (default: '
                   "the config's, else decord)")
    g.add_argument('--dali-device', default='auto', choices=('auto', 'cpu', 'gpu'),
                   help='DALI backend: NVDEC (gpu) or the CPU decoder (auto: gpu if a GPU '
                   'is visible)')
    g.add_argument('--sampler', choices=SAMPLERS, help='default SampleFrames')
    g.add_argument('--clip-len', type=int, help='frames per clip (default 16)')
    g.add_argument('--frame-interval', type=int, help='default 2 (AMD pre-training)')
    g.add_argument('--decode', default='all', choices=('all', 'open'),
                   help='all: decode every frame (finds corrupt packets); open: open and '
                   'count frames only (fast)')
    g.add_argument('--workers', type=int, default=min(os.cpu_count() or 1, 8),
                   help='processes (default: the CPU count, at most 8)')
    short = g.add_mutually_exclusive_group()
    short.add_argument('--keep-short', dest='keep_short', action='store_true', default=None,
                       help='keep clips shorter than the span in the cleaned list (the '
                       "default when the config's data set pads them: on_bad_clip='pad')")
    short.add_argument('--drop-short', dest='keep_short', action='store_false',
                       help='leave short clips out of the cleaned list')
    g.add_argument('--restart', action='store_true', help='ignore the resume state')
    g.add_argument('--strict', action='store_true', help='exit with status 3 when a bad clip '
                   'is found')
    g.add_argument('--quiet', action='store_true', help='no progress bar')


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument('--force', action='store_true',
                   help='replace existing lists whose content differs')
    p.add_argument('--skip-bad', action='store_true',
                   help='leave bad annotation rows out (listed in the report) instead of '
                   'stopping')
    p.add_argument('--keep-missing', action='store_true',
                   help='list clips whose video file is missing too')


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='prepare.py', description=__doc__.split('\n\n')[0],
                                epilog=__doc__.split('\n\n', 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='command', metavar='{ssv2,kinetics,ucf101,hmdb51,ava,scan}')
    sub.required = True

    s = sub.add_parser('ssv2', help='Something-Something V2 (labels.json, train.json, '
                       'validation.json)')
    s.add_argument('--ann-dir', help='folder with labels.json, train.json, validation.json')
    s.add_argument('--labels', help='labels.json (default: in --ann-dir)')
    s.add_argument('--train', help='train.json (default: in --ann-dir)')
    s.add_argument('--val', help='validation.json (default: in --ann-dir)')
    s.add_argument('--video-dir', help='the <id>.webm files (default: <out>/videos)')
    s.add_argument('--out', required=True, help='where the lists go (e.g. data/sthv2)')
    s.add_argument('--ext', default='webm', help='video extension (default webm)')
    _common(s)
    _scan_options(s, True)

    k = sub.add_parser('kinetics', help='Kinetics-400/600/700 (official csv)')
    k.add_argument('--version', default='400', choices=('400', '600', '700'))
    k.add_argument('--ann-dir', help='folder with train.csv / validate.csv')
    k.add_argument('--train-csv')
    k.add_argument('--val-csv')
    k.add_argument('--train-dir', help='train clips (default: <out>/videos_train)')
    k.add_argument('--val-dir', help='val clips (default: <out>/videos_val)')
    k.add_argument('--classes', help='class list, one per line (default: the sorted classes '
                   'of the train csv)')
    k.add_argument('--rename-spaces', action='store_true',
                   help='rename files and folders holding spaces in the video folders to '
                   'underscores (mmaction2 lists cannot hold spaces)')
    k.add_argument('--out', required=True, help='where the lists go (e.g. data/kinetics400)')
    _common(k)
    _scan_options(k, True)

    for name, what, ann in (('ucf101', 'UCF101 (ucfTrainTestlist: classInd, train/testlist0k)',
                             'ucfTrainTestlist folder'),
                            ('hmdb51', 'HMDB51 (testTrainMulti_7030_splits)',
                             'testTrainMulti_7030_splits folder')):
        u = sub.add_parser(name, help=what)
        u.add_argument('--ann-dir', required=True, help=ann)
        u.add_argument('--video-dir', help='<Class>/<name>.avi (default: <out>/videos)')
        u.add_argument('--out', required=True, help=f'where the lists go (e.g. data/{name})')
        u.add_argument('--splits', type=int, nargs='+', default=[1, 2, 3], choices=(1, 2, 3))
        _common(u)
        _scan_options(u, True)

    a = sub.add_parser('ava', help='AVA v2.x (csv, pbtxt, excluded timestamps) -> '
                       'annotations + raw frames')
    a.add_argument('--ann-dir', required=True, help='folder with the official AVA files')
    a.add_argument('--video-dir', help='the AVA videos (default: <out>/videos)')
    a.add_argument('--out', required=True, help='e.g. data/ava (annotations/, rawframes/)')
    a.add_argument('--version', default='2.2', choices=('2.1', '2.2'))
    a.add_argument('--splits', nargs='+', default=['train', 'val'], choices=('train', 'val'))
    a.add_argument('--fps', type=int, default=30)
    a.add_argument('--timestamp-start', type=int, default=900)
    a.add_argument('--timestamp-end', type=int, default=1800)
    a.add_argument('--video-offset', default='auto',
                   help="second of the full video at which a video file starts: 0 for the "
                   "original files, 900 for 15-minute cuts; 'auto' tells them apart by length")
    a.add_argument('--quality', type=int, default=95, help='JPEG quality')
    a.add_argument('--workers', type=int, default=min(os.cpu_count() or 1, 8))
    a.add_argument('--no-extract', dest='extract', action='store_false',
                   help='do not extract frames; check that <out>/rawframes covers every video')
    a.add_argument('--quiet', action='store_true')
    _common(a)

    sc = sub.add_parser('scan', help='open and decode every clip of a list; report and '
                        'cleaned list')
    sc.add_argument('list', nargs='?', help="the mmaction2 list (default: the config's ann_file)")
    sc.add_argument('--video-root', help="folder the list's paths are relative to (default: "
                    "the config's data_prefix.video)")
    sc.add_argument('--report-dir', help='where the report, cleaned list and state go '
                    "(default: the list's folder)")
    sc.add_argument('--force', action='store_true',
                    help='replace an existing cleaned list whose content differs')
    _scan_options(sc, False)
    return p


def _scan_settings(args, list_file=None, video_root=None) -> dict:
    """Scan keyword arguments from the command line and, when given, the config."""
    cfg = {}
    if args.config:
        cfg = settings_from_config(args.config, getattr(args, 'split', 'train'))
    keep_short = args.keep_short
    if keep_short is None:
        keep_short = cfg.get('on_bad_clip') == 'pad'
    return dict(
        list_file=list_file or cfg.get('list'),
        video_root=video_root if video_root is not None else cfg.get('video_root', ''),
        backend=args.backend or cfg.get('backend', 'decord'),
        sampler=args.sampler or cfg.get('sampler', 'SampleFrames'),
        clip_len=args.clip_len or cfg.get('clip_len', 16),
        frame_interval=args.frame_interval or cfg.get('frame_interval', 2),
        num_clips=cfg.get('num_clips', 1), delimiter=cfg.get('delimiter', ' '),
        decode=args.decode, workers=args.workers, keep_short=keep_short,
        restart=args.restart, progress=not args.quiet, dali_device=args.dali_device,
        config=args.config, split=getattr(args, 'split', None) if args.config else None)


def _print_summary(summary: dict) -> None:
    print(f'{summary["dataset"]}: ' + ', '.join(
        f'{k} {v}' for k, v in summary.get('splits', {}).items()))
    for path, status in summary.get('files', {}).items():
        print(f'  {status:9s} {path}')
    counts = summary.get('problem_counts') or {}
    if counts:
        print('  problems: ' + ', '.join(f'{k} {v}' for k, v in counts.items())
              + f' (see {summary["report_txt"]})')
    print(f'  report: {summary["report"]}')


def _scan_lists(args, lists, video_roots) -> int:
    bad = 0
    for split, path in lists.items():
        kw = _scan_settings(args, path, video_roots[split])
        report = scan_list(**kw)
        print(summary_line(report))
        bad += report['bad']
    return 3 if (bad and getattr(args, 'strict', False)) else 0


def run(args) -> int:
    cmd = args.command
    if cmd == 'scan':
        if not args.list and not args.config:
            raise PrepareError('scan: give a list file, or --config to take it from')
        kw = _scan_settings(args, args.list, args.video_root)
        if not kw['list_file']:
            raise PrepareError('scan: no list file')
        report = scan_list(report_dir=args.report_dir, force=args.force, **kw)
        print(summary_line(report))
        return 3 if (args.strict and report['bad']) else 0
    common = dict(force=args.force, skip_bad=args.skip_bad, keep_missing=args.keep_missing)
    if cmd == 'ssv2':
        video_dir = args.video_dir or osp.join(args.out, 'videos')
        summary = prepare_ssv2(video_dir, args.out, ann_dir=args.ann_dir, labels=args.labels,
                               train=args.train, val=args.val, ext=args.ext, **common)
        roots = {s: video_dir for s in summary['lists']}
    elif cmd == 'kinetics':
        summary = prepare_kinetics(args.out, version=args.version, ann_dir=args.ann_dir,
                                   train_csv=args.train_csv, val_csv=args.val_csv,
                                   train_dir=args.train_dir, val_dir=args.val_dir,
                                   classes=args.classes, rename=args.rename_spaces, **common)
        roots = summary['video_dirs']
        for s, pairs in (summary.get('renamed') or {}).items():
            for old, new in pairs:
                print(f'  renamed {old!r} -> {new!r}')
    elif cmd in ('ucf101', 'hmdb51'):
        video_dir = args.video_dir or osp.join(args.out, 'videos')
        fn = prepare_ucf101 if cmd == 'ucf101' else prepare_hmdb51
        summary = fn(args.ann_dir, video_dir, args.out, splits=args.splits, **common)
        roots = {s: video_dir for s in summary['lists']}
    elif cmd == 'ava':
        video_dir = args.video_dir or osp.join(args.out, 'videos')
        summary = prepare_ava(args.ann_dir, args.out, video_dir=video_dir, splits=args.splits,
                              version=args.version, fps=args.fps,
                              timestamp_start=args.timestamp_start,
                              timestamp_end=args.timestamp_end, video_offset=args.video_offset,
                              quality=args.quality, workers=args.workers, extract=args.extract,
                              progress=not args.quiet, **common)
        _print_summary(summary)
        return 0
    else:  # argparse rules this out
        raise PrepareError(f'unknown command {cmd!r}')
    _print_summary(summary)
    if getattr(args, 'scan', False):
        return _scan_lists(args, summary['lists'], roots)
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except Interrupted as err:
        print(f'error: {err}', file=sys.stderr)
        return 130
    except PrepareError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    except OSError as err:  # permissions, a full disk: name the file, no traceback
        where = f' {err.filename!r}' if getattr(err, 'filename', None) else ''
        print(f'error:{where} {err.strerror or err}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print('error: interrupted; run the same command again to resume', file=sys.stderr)
        return 130


if __name__ == '__main__':
    sys.exit(main())
