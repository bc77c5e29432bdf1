"""tools/data/prepare.py and amd_mmaction.data.prepare: official annotation
files (real json / csv / pbtxt text) and real short videos of several codecs,
broken ones included, to mmaction2 lists, class maps and scan reports,
checked line by line."""
import importlib.util
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from amd_mmaction.data import check_video_list, write_video
from amd_mmaction.data.prepare import (PrepareError, prepare_ava, prepare_hmdb51,
                                        prepare_kinetics, prepare_ssv2, prepare_ucf101,
                                        scan_list, settings_from_config, span_frames)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PREPARE = osp.join(ROOT, 'tools', 'data', 'prepare.py')
CONFIGS = osp.join(ROOT, 'configs')


def _load_cli():
    spec = importlib.util.spec_from_file_location('prepare_cli', PREPARE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


CLI = _load_cli()


# ------------------------------------------------------------------ fixtures

def _frames(n, size=32, seed=0, noise=False):
    rng = np.random.default_rng(seed)
    if noise:
        return rng.integers(0, 255, (n, size, size, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:size, 0:size]
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        out[i] = (((xx + 2 * i) % size) * 255 // size)[..., None]
    return out


def _pyav(path, codec, n=16, size=32, fps=12, pix='yuv420p', options=None, noise=False,
          t_start=0.0, level=None):
    """Write with PyAV directly (codecs write_video does not offer, mp4
    faststart, a stream starting at ``t_start`` seconds, flat grey frames of
    ``level(i)``)."""
    import av
    os.makedirs(osp.dirname(path), exist_ok=True)
    with av.open(path, 'w', options=options or {}) as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height = (size, size) if isinstance(size, int) else size
        s.pix_fmt = pix
        s.gop_size = 8
        if codec == 'libvpx-vp9':
            s.options = {'deadline': 'realtime', 'cpu-used': '8'}
        frames = _frames(n, s.width, noise=noise) if level is None else None
        for i in range(n):
            img = frames[i] if frames is not None else np.full((s.height, s.width, 3), level(i),
                                                              np.uint8)
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img[:s.height, :s.width]),
                                            format='rgb24')
            vf.pts = int(round(t_start * fps)) + i
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def _write(path, text):
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8', newline='') as f:
        f.write(text)


def _lines(path):
    with open(path, encoding='utf-8') as f:
        return f.read().splitlines()


def _report(summary):
    with open(summary['report']) as f:
        return json.load(f)


def _chdir(path):
    old = os.getcwd()
    os.chdir(path)
    return old


# ------------------------------------------------------------------ SSV2

SSV2_LABELS = {'Putting something on a surface': '0', 'Moving something up': '1',
               'Pushing something from left to right': '2'}


def _ssv2_item(vid, template, label='a thing'):
    return {'id': vid, 'label': label, 'template': template, 'placeholders': [label]}


@pytest.fixture
def ssv2(tmp_path):
    ann = tmp_path / 'download'
    _write(str(ann / 'labels.json'), json.dumps(SSV2_LABELS, indent=4))
    train = [_ssv2_item('10', 'Putting [something] on a surface', 'café crème cup'),
             _ssv2_item('11', 'Moving [something] up'),
             _ssv2_item(12, 'Pushing [something] from left to right'),
             _ssv2_item('13', 'Moving [something] up'),        # no video
             _ssv2_item('11', 'Moving [something] up')]        # listed twice
    _write(str(ann / 'train.json'), json.dumps(train, indent=4, ensure_ascii=False))
    _write(str(ann / 'validation.json'),
           json.dumps([_ssv2_item('20', 'Moving something up'),
                       _ssv2_item('21', 'putting  [something] on a SURFACE')], indent=4))
    videos = tmp_path / 'data' / 'sthv2' / 'videos'
    for i, vid in enumerate(('10', '11', '12', '20', '21')):
        write_video(str(videos / f'{vid}.webm'), _frames(16, seed=i), fps=12)
    return dict(ann=str(ann), videos=str(videos), out=str(tmp_path / 'data' / 'sthv2'),
                root=str(tmp_path))


def test_ssv2_official_json_to_lists(ssv2):
    s = prepare_ssv2(ssv2['videos'], ssv2['out'], ann_dir=ssv2['ann'])
    out = ssv2['out']
    assert _lines(osp.join(out, 'sthv2_train_list_videos.txt')) == [
        '10.webm 0', '11.webm 1', '12.webm 2']
    assert _lines(osp.join(out, 'sthv2_val_list_videos.txt')) == ['20.webm 1', '21.webm 0']
    assert _lines(osp.join(out, 'label_map_sthv2.txt')) == list(SSV2_LABELS)
    assert s['splits']['train'] == dict(annotated=4, listed=3, missing=1)
    rep = _report(s)
    assert rep['problem_counts'] == {'duplicate': 1, 'missing': 1}
    train_json = osp.join(ssv2['ann'], 'train.json')
    dup = rep['problems'][0]
    assert dup['kind'] == 'duplicate' and dup['where'] == f'{train_json}:34'
    assert _lines(s['missing_file']) == [f'train\t{train_json}:26\t13.webm\t1']
    # mmaction2 reads the lists as written (paths relative to the video folder)
    assert [lab for _, lab in check_video_list(osp.join(out, 'sthv2_train_list_videos.txt'),
                                               ssv2['videos'], num_classes=3)] == [0, 1, 2]
    # again: nothing changes; different content needs --force
    again = prepare_ssv2(ssv2['videos'], ssv2['out'], ann_dir=ssv2['ann'])
    assert set(again['files'].values()) == {'unchanged'}
    os.remove(osp.join(ssv2['videos'], '12.webm'))
    with pytest.raises(PrepareError, match='exist with different content.*--force'):
        prepare_ssv2(ssv2['videos'], ssv2['out'], ann_dir=ssv2['ann'])
    assert _lines(osp.join(out, 'sthv2_train_list_videos.txt'))[-1] == '12.webm 2'
    forced = prepare_ssv2(ssv2['videos'], ssv2['out'], ann_dir=ssv2['ann'], force=True)
    assert forced['files']['sthv2_train_list_videos.txt'] == 'replaced'
    assert _lines(osp.join(out, 'sthv2_train_list_videos.txt')) == ['10.webm 0', '11.webm 1']


def test_ssv2_bad_input(ssv2):
    ann, train_json = ssv2['ann'], osp.join(ssv2['ann'], 'train.json')
    items = json.load(open(train_json))
    items.insert(1, _ssv2_item('14', 'Flying [something] over the moon'))
    _write(train_json, json.dumps(items, indent=4))
    with pytest.raises(PrepareError) as err:
        prepare_ssv2(ssv2['videos'], ssv2['out'], ann_dir=ann)
    msg = str(err.value)
    assert f'{train_json}:10: item id 14: template \'Flying [something] over the moon\' is not ' \
           'in labels.json' in msg and '--skip-bad' in msg
    assert not osp.exists(osp.join(ssv2['out'], 'sthv2_train_list_videos.txt'))
    s = prepare_ssv2(ssv2['videos'], ssv2['out'], ann_dir=ann, skip_bad=True)
    assert [p['id'] for p in _report(s)['problems'] if p['kind'] == 'unknown_label'] == ['14']
    assert _lines(osp.join(ssv2['out'], 'sthv2_train_list_videos.txt')) == [
        '10.webm 0', '11.webm 1', '12.webm 2']
    # a malformed json line: file:line:column
    val_json = osp.join(ann, 'validation.json')
    _write(val_json, '[\n {"id": "20", "template": "Moving something up"}\n'
                     ' {"id": "21", "template": "Moving something up"}\n]\n')
    with pytest.raises(PrepareError, match=rf"{val_json}:3:2: .* not valid JSON \(Expecting ',' "
                                           'delimiter'):
        prepare_ssv2(ssv2['videos'], ssv2['out'], ann_dir=ann, force=True)
    # JSON lines are read as well
    _write(val_json, '{"id": "20", "template": "Moving something up"}\n'
                     '{"id": "21", "template": "Moving [something] up"}\n')
    prepare_ssv2(ssv2['videos'], ssv2['out'], ann_dir=ann, force=True, skip_bad=True)
    assert _lines(osp.join(ssv2['out'], 'sthv2_val_list_videos.txt')) == ['20.webm 1',
                                                                         '21.webm 1']
    # labels.json with bracketed keys, ids not 0..N-1
    _write(osp.join(ann, 'labels.json'), json.dumps({'Moving [something] up': '0',
                                                    'Putting [something] on a surface': '5'}))
    with pytest.raises(PrepareError, match=r'labels.json: class ids must be 0..1'):
        prepare_ssv2(ssv2['videos'], ssv2['out'], ann_dir=ann)
    # output inside the video folder
    with pytest.raises(PrepareError, match='inside the video folder'):
        prepare_ssv2(ssv2['videos'], osp.join(ssv2['videos'], 'lists'), ann_dir=ann)


# ------------------------------------------------------------------ Kinetics

def test_kinetics_official_csv(tmp_path):
    ann, out = tmp_path / 'kinetics400', tmp_path / 'data' / 'kinetics400'
    # header in another column order, quoted fields, a duplicate, a missing clip
    _write(str(ann / 'train.csv'),
           'youtube_id,time_start,time_end,label,split\n'
           '-abc_DEF12,10,20,abseiling,train\n'
           'yt00000002,0,10,"air drumming",train\n'
           'yt00000003,31,41,café dancing,train\n'
           'yt00000004,5,15,abseiling,train\n'          # never downloaded
           '-abc_DEF12,10,20,abseiling,train\n')        # listed twice
    # no header: the official order
    _write(str(ann / 'validate.csv'),
           'abseiling,yt00000010,100,110,val\n'
           'café dancing,yt00000011,7,17,val\n')
    train, val = out / 'videos_train', out / 'videos_val'
    write_video(str(train / 'abseiling' / '-abc_DEF12_000010_000020.mp4'), _frames(16), fps=12)
    write_video(str(train / 'air drumming' / 'yt00000002_000000_000010.mp4'), _frames(16))
    write_video(str(train / 'café_dancing' / 'yt00000003_000031_000041.mp4'), _frames(16))
    write_video(str(val / 'yt00000010_000100_000110.mp4'), _frames(16))   # flat layout
    write_video(str(val / 'yt00000011.mp4'), _frames(16))                 # plain youtube id
    with pytest.raises(PrepareError) as err:
        prepare_kinetics(str(out), ann_dir=str(ann))
    assert "'air drumming/yt00000002_000000_000010.mp4' holds a space" in str(err.value)
    assert '--rename-spaces' in str(err.value)
    s = prepare_kinetics(str(out), ann_dir=str(ann), rename=True)
    assert s['renamed'] == {'train': [('air drumming', 'air_drumming')]}
    assert _lines(out / 'label_map_k400.txt') == ['abseiling', 'air drumming', 'café dancing']
    assert _lines(out / 'kinetics400_train_list_videos.txt') == [
        'abseiling/-abc_DEF12_000010_000020.mp4 0',
        'air_drumming/yt00000002_000000_000010.mp4 1',
        'café_dancing/yt00000003_000031_000041.mp4 2']
    assert _lines(out / 'kinetics400_val_list_videos.txt') == [
        'yt00000010_000100_000110.mp4 0', 'yt00000011.mp4 2']
    assert s['splits']['train'] == dict(annotated=5, listed=3, missing=1)
    rep = _report(s)
    assert rep['problem_counts'] == {'class_count': 1, 'duplicate': 1, 'missing': 1}
    assert _lines(s['missing_file']) == [
        f'train\t{ann / "train.csv"}:5\tyt00000004_000005_000015.mp4\tabseiling']
    # a label the class list does not have, a row with a bad time
    _write(str(ann / 'validate.csv'), 'abseiling,yt00000010,100,110,val\n'
                                      'juggling fire,yt00000012,1,11,val\n'
                                      'abseiling,yt00000013,ten,20,val\n')
    with pytest.raises(PrepareError) as err:
        prepare_kinetics(str(out), ann_dir=str(ann))
    msg = str(err.value)
    assert f"{ann / 'validate.csv'}:2: class 'juggling fire' is not in the class list" in msg
    assert f"{ann / 'validate.csv'}:3: time_start 'ten'" in msg


# ------------------------------------------------------------------ UCF101 / HMDB51

def test_ucf101_splits(tmp_path):
    ann, out = tmp_path / 'ucfTrainTestlist', tmp_path / 'data' / 'ucf101'
    classes = ['ApplyEyeMakeup', 'BandMarching', 'HandstandPushups']
    _write(str(ann / 'classInd.txt'), ''.join(f'{i + 1} {c}\r\n' for i, c in enumerate(classes)))
    vids = {c: [f'{c}/v_{c}_g0{g}_c01.avi' for g in (1, 2)] for c in classes}
    vids['HandstandPushups'] = [f'HandstandPushups/v_HandStandPushups_g0{g}_c01.avi'
                                for g in (1, 2)]
    for k in (1, 2, 3):
        tr = [(vids[c][k % 2], i + 1) for i, c in enumerate(classes)]
        te = [vids[c][(k + 1) % 2] for c in classes]
        _write(str(ann / f'trainlist0{k}.txt'), ''.join(f'{v} {i}\r\n' for v, i in tr))
        _write(str(ann / f'testlist0{k}.txt'), ''.join(f'{v}\r\n' for v in te))
    for i, rel in enumerate(v for c in classes for v in vids[c]):
        write_video(str(out / 'videos' / rel), _frames(16, seed=i), fps=12)
    s = prepare_ucf101(str(ann), str(out / 'videos'), str(out))
    assert _lines(out / 'label_map_ucf101.txt') == classes
    assert _lines(out / 'ucf101_train_split_1_videos.txt') == [
        'ApplyEyeMakeup/v_ApplyEyeMakeup_g02_c01.avi 0',
        'BandMarching/v_BandMarching_g02_c01.avi 1',
        'HandstandPushups/v_HandStandPushups_g02_c01.avi 2']
    assert _lines(out / 'ucf101_val_split_2_videos.txt') == [
        'ApplyEyeMakeup/v_ApplyEyeMakeup_g02_c01.avi 0',
        'BandMarching/v_BandMarching_g02_c01.avi 1',
        'HandstandPushups/v_HandStandPushups_g02_c01.avi 2']
    assert sorted(s['lists']) == [f'{a}_split_{k}' for a in ('train', 'val') for k in (1, 2, 3)]
    assert _report(s)['problem_counts'] == {}
    # a train label that disagrees with its folder; a line listed twice
    _write(str(ann / 'trainlist01.txt'), 'ApplyEyeMakeup/v_ApplyEyeMakeup_g02_c01.avi 2\r\n'
                                         'BandMarching/v_BandMarching_g02_c01.avi 2\r\n'
                                         'BandMarching/v_BandMarching_g02_c01.avi 2\r\n')
    with pytest.raises(PrepareError) as err:
        prepare_ucf101(str(ann), str(out / 'videos'), str(out), splits=[1])
    assert (f"{ann / 'trainlist01.txt'}:1: ApplyEyeMakeup/v_ApplyEyeMakeup_g02_c01.avi: class "
            "id 2 is 'BandMarching', but the folder is 'ApplyEyeMakeup' (id 1)") in str(err.value)
    s = prepare_ucf101(str(ann), str(out / 'videos'), str(out), splits=[1], skip_bad=True,
                       force=True)
    assert _lines(out / 'ucf101_train_split_1_videos.txt') == [
        'BandMarching/v_BandMarching_g02_c01.avi 1']
    assert _report(s)['problem_counts'] == {'duplicate': 1, 'label_mismatch': 1}


def test_hmdb51_splits(tmp_path):
    ann, out = tmp_path / 'testTrainMulti_7030_splits', tmp_path / 'data' / 'hmdb51'
    names = {'brush_hair': ['April_09_brush_hair_u_nm_np1_ba_goo_0.avi',
                            'Aussie_Brush_Hair_brush_hair_h_cm_np1_le_goo_0.avi',
                            'Blonde_being_brushed_brush_hair_f_cm_np2_ri_med_0.avi'],
             'cartwheel': ['(Rad)Schlag_die_Bank!_cartwheel_f_cm_np1_le_med_0.avi',
                           'Acrobacias_de_un_fenomeno_cartwheel_f_cm_np1_ba_bad_8.avi',
                           'Bodenturnen_2004_cartwheel_f_cm_np1_le_med_0.avi']}
    for cls, vids in names.items():
        for k in (1, 2, 3):
            marks = ['1', '2', '0'][k - 1:] + ['1', '2', '0'][:k - 1]
            _write(str(ann / f'{cls}_test_split{k}.txt'),
                   ''.join(f'{v} {m} \n' for v, m in zip(vids, marks)))
        for i, v in enumerate(vids):
            write_video(str(out / 'videos' / cls / v), _frames(16, seed=i), fps=12)
    s = prepare_hmdb51(str(ann), str(out / 'videos'), str(out))
    assert _lines(out / 'label_map_hmdb51.txt') == ['brush_hair', 'cartwheel']
    assert _lines(out / 'hmdb51_train_split_1_videos.txt') == [
        'brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0.avi 0',
        'cartwheel/(Rad)Schlag_die_Bank!_cartwheel_f_cm_np1_le_med_0.avi 1']
    assert _lines(out / 'hmdb51_val_split_1_videos.txt') == [
        'brush_hair/Aussie_Brush_Hair_brush_hair_h_cm_np1_le_goo_0.avi 0',
        'cartwheel/Acrobacias_de_un_fenomeno_cartwheel_f_cm_np1_ba_bad_8.avi 1']
    assert _lines(out / 'hmdb51_train_split_2_videos.txt') == [
        'brush_hair/Blonde_being_brushed_brush_hair_f_cm_np2_ri_med_0.avi 0',
        'cartwheel/Bodenturnen_2004_cartwheel_f_cm_np1_le_med_0.avi 1']
    assert s['splits']['train_split_3'] == dict(annotated=2, listed=2, missing=0)
    # one video in two classes' files; a mark that is not 0/1/2
    _write(str(ann / 'cartwheel_test_split1.txt'),
           'April_09_brush_hair_u_nm_np1_ba_goo_0.avi 1\nBodenturnen.avi 3\n')
    with pytest.raises(PrepareError) as err:
        prepare_hmdb51(str(ann), str(out / 'videos'), str(out))
    msg = str(err.value)
    assert f"{ann / 'cartwheel_test_split1.txt'}:1: April_09_brush_hair_u_nm_np1_ba_goo_0.avi " \
           f"listed again (first at {ann / 'brush_hair_test_split1.txt'}:1, class " \
           "'brush_hair')" in msg
    assert f"{ann / 'cartwheel_test_split1.txt'}:2: 'Bodenturnen.avi 3'; expected" in msg


# ------------------------------------------------------------------ AVA

AVA_PBTXT = ''.join(f'label {{\n  name: "{n}"\n  label_id: {i}\n  label_type: {t}\n}}\n'
                    for i, n, t in ((1, 'bend/bow (at the waist)', 'PERSON_MOVEMENT'),
                                    (11, 'sit', 'PERSON_MOVEMENT'),
                                    (12, 'stand', 'PERSON_MOVEMENT'),
                                    (17, 'carry/hold (an object)', 'OBJECT_MANIPULATION'),
                                    (80, 'watch (a person)', 'PERSON_INTERACTION')))
AVA_EVAL = '\n'.join(f'item {{\n\tname: "{n}"\n\tid: {i}\n}}'  # tabs: mmaction2 misses them
                     for i, n in ((11, 'sit'), (12, 'stand'), (17, 'carry/hold (an object)')))


def _level(i):
    return (i * 7) % 240 + 8


@pytest.fixture
def ava(tmp_path):
    ann, out = tmp_path / 'ava_v2.2', tmp_path / 'data' / 'ava'
    _write(str(ann / 'ava_action_list_v2.2.pbtxt'), AVA_PBTXT)
    _write(str(ann / 'ava_action_list_v2.2_for_activitynet_2019.pbtxt'), AVA_EVAL)
    _write(str(ann / 'ava_train_v2.2.csv'),
           'vidA_-x1,0902,0.077,0.151,0.283,0.811,12,0\n'
           'vidA_-x1,0902,0.077,0.151,0.283,0.811,17,0\n'
           'vidA_-x1,0903,0.226,0.032,0.366,0.497,1,1\n')
    _write(str(ann / 'ava_val_v2.2.csv'), 'vidB,0902,0.1,0.2,0.5,0.9,11,0\n'
                                          'vidB,0903,0.1,0.2,0.5,0.9,11,0\n')
    _write(str(ann / 'ava_train_excluded_timestamps_v2.2.csv'), 'vidA_-x1,0901\n')
    _write(str(ann / 'ava_val_excluded_timestamps_v2.2.csv'), '')
    _write(str(ann / 'ava_file_names_trainval_v2.1.txt'), 'vidA_-x1.mp4\nvidB.webm\n')
    # vidA: a full movie's time line (starts at 898 s here), 25 fps;
    # vidB: a 15-minute cut (second 0 is second 900), 30 fps
    _pyav(str(out / 'videos' / 'vidA_-x1.mp4'), 'libx264', n=25 * 7, size=(32, 24), fps=25,
          t_start=898, level=_level)
    _pyav(str(out / 'videos' / 'vidB.webm'), 'libvpx-vp9', n=30 * 5, size=(32, 24), fps=30,
          level=_level)
    return dict(ann=str(ann), out=str(out), root=str(tmp_path))


def _grey(path):
    import cv2
    img = cv2.imread(path)
    assert img is not None, path
    return float(img.mean())


def test_ava_official_files_to_rawframes(ava):
    kw = dict(timestamp_start=900, timestamp_end=903, progress=False)
    s = prepare_ava(ava['ann'], ava['out'], **kw)
    out = ava['out']
    anno = osp.join(out, 'annotations')
    assert _lines(osp.join(anno, 'ava_train_v2.2.csv')) == _lines(
        osp.join(ava['ann'], 'ava_train_v2.2.csv'))
    assert _lines(osp.join(anno, 'ava_train_excluded_timestamps_v2.2.csv')) == ['vidA_-x1,0901']
    assert _lines(osp.join(anno, 'ava_action_list_v2.2.pbtxt')) == AVA_PBTXT.splitlines()
    # the tab-indented eval map is rewritten so that mmaction2's reader sees it
    assert _lines(osp.join(anno, 'ava_action_list_v2.2_for_activitynet_2019.pbtxt'))[:4] == [
        'label {', '  name: "sit"', '  label_id: 11', '}']
    rep = _report(s)
    assert rep['problem_counts'] == {'label_map_rewritten': 1, 'no_proposals': 2,
                                     'not_evaluated': 1}
    assert s['frames'] == {'extracted': 2}
    for vid, t_first, fps in (('vidA_-x1', 898, 25), ('vidB', 900, 30)):
        frames = sorted(os.listdir(osp.join(out, 'rawframes', vid)))
        assert frames[0] == '.done' and frames[1] == 'img_00001.jpg'
        assert frames[-1] == 'img_00120.jpg' and len(frames) == 121
        for k in (0, 1, 2, 29, 30, 119):  # frame k+1 is second 900 + k/30
            src = int(np.floor((900 + k / 30 - t_first) * fps + 0.5))
            assert abs(_grey(osp.join(out, 'rawframes', vid, f'img_{k + 1:05d}.jpg'))
                       - _level(src)) < 3, (vid, k)
    # resumable: done videos are skipped, an unfinished one is redone
    os.remove(osp.join(out, 'rawframes', 'vidB', '.done'))
    os.remove(osp.join(out, 'rawframes', 'vidB', 'img_00050.jpg'))
    s2 = prepare_ava(ava['ann'], ava['out'], **kw)
    assert s2['frames'] == {'done before': 1, 'extracted': 1}
    assert len(os.listdir(osp.join(out, 'rawframes', 'vidB'))) == 121
    # mmaction2's AVADataset and frame loading read the result
    from mmaction.datasets import AVADataset
    from mmaction.datasets.transforms import RawFrameDecode, SampleAVAFrames
    old = _chdir(ava['root'])
    try:
        ds = AVADataset(ann_file='data/ava/annotations/ava_train_v2.2.csv',
                        exclude_file='data/ava/annotations/ava_train_excluded_timestamps_v2.2.csv',
                        label_file='data/ava/annotations/ava_action_list_v2.2.pbtxt',
                        data_prefix=dict(img='data/ava/rawframes'), timestamp_start=900,
                        timestamp_end=903, pipeline=[
                            SampleAVAFrames(clip_len=4, frame_interval=8), RawFrameDecode()])
        assert len(ds) == 2
        item = ds[0]
        assert len(item['imgs']) == 4 and item['imgs'][0].shape == (24, 32, 3)
    finally:
        os.chdir(old)
    # an action id the label map lacks; a box outside [0, 1]
    val_csv = osp.join(ava['ann'], 'ava_val_v2.2.csv')
    _write(val_csv, 'vidB,0902,0.1,0.2,0.5,0.9,11,0\nvidB,0903,0.1,0.2,0.5,0.9,99,0\n'
                    'vidB,0903,0.1,0.2,1.5,0.9,11,1\n')
    with pytest.raises(PrepareError) as err:
        prepare_ava(ava['ann'], ava['out'], **kw)
    assert f'{val_csv}:2: action_id 99 is not in the label map (5 actions)' in str(err.value)
    assert f'{val_csv}:3: box [0.1, 0.2, 1.5, 0.9]' in str(err.value)


# ------------------------------------------------------------------ scan

@pytest.fixture(scope='module')
def clips(tmp_path_factory):
    """Clips of several codecs, good and broken, under a folder with a space
    and a unicode name."""
    base = tmp_path_factory.mktemp('scan')
    root = base / 'my videos'
    write_video(str(root / 'good' / 'a.webm'), _frames(24), fps=12)
    write_video(str(root / 'good' / 'b.mp4'), _frames(24), fps=12)
    _pyav(str(root / 'good' / 'c_mpeg4.mp4'), 'mpeg4', n=24)
    write_video(str(root / 'good' / 'd.avi'), _frames(24), fps=12)
    write_video(str(root / 'ünïcødé' / 'e.webm'), _frames(24, seed=3), fps=12)
    write_video(str(root / 'short.webm'), _frames(8), fps=12)
    _pyav(str(root / 'fast.mp4'), 'libx264', n=48, noise=True, options={'movflags': 'faststart'})
    data = open(root / 'fast.mp4', 'rb').read()
    open(root / 'trunc.mp4', 'wb').write(data[:len(data) * 2 // 3])   # index intact, data cut
    write_video(str(root / 'full.webm'), _frames(24), fps=12)
    data = open(root / 'full.webm', 'rb').read()
    open(root / 'trunc.webm', 'wb').write(data[:len(data) // 3])
    open(root / 'garbage.mp4', 'wb').write(b'\x00\x00\x00\x18ftypmp42' + b'junk' * 200)
    open(root / 'zero.mp4', 'wb').close()
    lines = ['good/a.webm 0', 'good/b.mp4 1', 'good/c_mpeg4.mp4 2', 'good/d.avi 3',
             'ünïcødé/e.webm 4', 'short.webm 0', 'trunc.mp4 1', 'trunc.webm 2',
             'garbage.mp4 3', 'zero.mp4 4', 'missing.mp4 0', 'good/b.mp4 1',
             'good/a.webm\t0']
    lst = base / 'lists' / 'clips_list_videos.txt'
    _write(str(lst), '\n'.join(lines) + '\n')
    return dict(root=str(root), list=str(lst), lines=lines, base=str(base))


GOOD = ['good/a.webm 0', 'good/b.mp4 1', 'good/c_mpeg4.mp4 2', 'good/d.avi 3', 'ünïcødé/e.webm 4']


def _reasons(report):
    return {r: [it['line'] for it in items] for r, items in report['bad_lines'].items()}


def test_scan_reports_bad_clips_by_reason(clips, tmp_path):
    rep = scan_list(clips['list'], clips['root'], report_dir=str(tmp_path), clip_len=8,
                    frame_interval=2, workers=2, progress=False)
    assert _reasons(rep) == {'bad_line': [13], 'duplicate': [12], 'missing': [11], 'empty': [10],
                             'unreadable': [9], 'undecodable': [7], 'truncated': [8],
                             'short': [6]}
    bad = rep['bad_lines']
    assert bad['short'][0] == dict(line=6, text='short.webm 0', detail='8 frames, SampleFrames('
                                   'clip_len=8, frame_interval=2) needs 15')
    assert bad['duplicate'][0]['detail'] == 'also listed at line 2'
    assert bad['undecodable'][0]['detail'].startswith(('decord: DECORDError: ',
                                                        'decord fails at frame '))
    assert (rep['lines'], rep['good'], rep['bad']) == (13, 5, 8)
    stem = 'clips_list_videos'
    assert _lines(tmp_path / f'{stem}_clean.txt') == GOOD
    h = rep['histograms']
    assert h['codec'] == {'vp9': 4, 'h264': 2, 'mjpeg': 1, 'mpeg4': 1}
    assert h['resolution'] == {'32x32': 8} and h['fps'] == {'12': 8}
    assert h['frames']['16-32'] == 5 and h['frames']['unknown'] == 1  # trunc.mp4: none
    assert sum(h['frames'].values()) == 8
    assert h['duration_s'] == {'0-1': 1, '2-4': 6, '4-6': 1}
    assert re.fullmatch(r'\d frames decode, the header promises 24 \(2.0 s at 12.0 fps\)',
                        bad['truncated'][0]['detail'])
    md = open(tmp_path / f'{stem}_scan_report.md', encoding='utf-8').read()
    assert '- line 10: `zero.mp4 4`: ' in md and '### codec' in md
    with open(tmp_path / f'{stem}_scan_report.json', encoding='utf-8') as f:
        assert json.load(f)['counts']['missing'] == 1
    # a rerun resumes from the state: nothing is decoded again
    again = scan_list(clips['list'], clips['root'], report_dir=str(tmp_path), clip_len=8,
                      frame_interval=2, workers=1, progress=False)
    assert (again['scanned'], again['resumed'], again['resume']) == (0, 11, 'resumed')
    assert again['bad_lines'] == rep['bad_lines']
    # an interrupted scan (state cut after 4 clips, last line half-written) resumes
    state = tmp_path / f'{stem}_scan_state.jsonl'
    kept = open(state, encoding='utf-8').read().split('\n')[:5]
    _write(str(state), '\n'.join(kept) + '\n{"rel": "good/a.we')
    resumed = scan_list(clips['list'], clips['root'], report_dir=str(tmp_path), clip_len=8,
                        frame_interval=2, workers=1, progress=False)
    assert (resumed['scanned'], resumed['resumed']) == (7, 4)
    assert resumed['bad_lines'] == rep['bad_lines']
    # another span: no rescan, only the verdict changes; short clips kept on request
    keep = scan_list(clips['list'], clips['root'], report_dir=str(tmp_path), clip_len=5,
                     frame_interval=2, keep_short=True, force=True, workers=1, progress=False)
    assert keep['scanned'] == 0 and keep['counts']['short'] == 1 and keep['kept_short'] == 1
    assert _lines(tmp_path / f'{stem}_clean.txt') == GOOD[:5] + ['short.webm 0']


def test_scan_dali_backend_routes_like_the_dali_path(clips, tmp_path):
    pytest.importorskip('nvidia.dali')
    rep = scan_list(clips['list'], clips['root'], report_dir=str(tmp_path), backend='dali',
                    dali_device='cpu', clip_len=8, frame_interval=2, workers=1, progress=False)
    # VP9 / MJPEG on DALI's CPU decoder, H.264 / MPEG-4 go to decord (as on CPU in training)
    assert rep['histograms']['decoder'] == {'dali-cpu': 5, 'decord': 3}
    assert _reasons(rep) == {'bad_line': [13], 'duplicate': [12], 'missing': [11], 'empty': [10],
                             'unreadable': [9], 'undecodable': [7], 'truncated': [8],
                             'short': [6]}
    assert _lines(rep['clean_list']) == GOOD


def test_scan_settings_from_configs_and_demo_data(motion_data, tmp_path):
    tiny = settings_from_config(osp.join(CONFIGS, 'tiny', 'amd_tiny_motion.py'))
    assert {k: tiny[k] for k in ('list', 'video_root', 'backend', 'sampler', 'clip_len',
                                 'frame_interval', 'on_bad_clip')} == dict(
        list='data/motion/train.txt', video_root='data/motion/videos', backend='decord',
        sampler='SampleFrames', clip_len=8, frame_interval=2, on_bad_clip='pad')
    dali = settings_from_config(osp.join(CONFIGS, 'tiny', 'amd_tiny_motion_dali.py'))
    assert dali['backend'] == 'dali' and dali['dataset_type'] == 'DALIVideoDataset'
    ft = settings_from_config(osp.join(CONFIGS, 'finetune', '_base_', 'ssv2_finetune_data.py'),
                              'val')
    assert (ft['sampler'], ft['clip_len'], ft['list']) == (
        'UniformSample', 16, 'data/sthv2/sthv2_val_list_videos.txt')
    assert span_frames('UniformSample', 16, 4) == 16 and span_frames('SampleFrames', 16, 2) == 31
    with pytest.raises(PrepareError, match='no test_dataloader.dataset'):
        settings_from_config(osp.join(CONFIGS, 'tiny', 'amd_tiny_motion.py'), 'test')
    # the demo data (conftest's motion_data: tools/make_demo_data.py's writer)
    # scanned through the tiny config unchanged: its relative paths, from
    # the working directory
    os.makedirs(tmp_path / 'data')
    os.symlink(osp.dirname(motion_data['train']), tmp_path / 'data' / 'motion')
    old = _chdir(tmp_path)
    try:
        rc = CLI.main(['scan', '--config', osp.join(CONFIGS, 'tiny', 'amd_tiny_motion.py'),
                       '--workers', '1', '--quiet', '--report-dir', str(tmp_path / 'reports')])
    finally:
        os.chdir(old)
    assert rc == 0
    rep = json.load(open(tmp_path / 'reports' / 'train_scan_report.json'))
    assert (rep['good'], rep['bad'], rep['settings']['min_frames']) == (12, 0, 15)
    assert rep['settings']['keep_short'] is True  # the config pads short clips
    assert rep['histograms']['codec'] == {'vp9': 12}
    assert _lines(tmp_path / 'reports' / 'train_clean.txt') == _lines(motion_data['train'])


# ------------------------------------------------------------------ configs' names

def test_outputs_are_what_the_configs_read(ssv2, tmp_path):
    from mmengine.config import Config
    root = ssv2['root']
    prepare_ssv2(ssv2['videos'], ssv2['out'], ann_dir=ssv2['ann'])
    ann = tmp_path / 'k400'
    _write(str(ann / 'train.csv'), 'label,youtube_id,time_start,time_end,split\n'
                                   'abseiling,yt1,0,10,train\n')
    _write(str(ann / 'validate.csv'), 'label,youtube_id,time_start,time_end,split\n'
                                      'abseiling,yt2,0,10,val\n')
    k400 = tmp_path / 'data' / 'kinetics400'
    for split, yid in (('train', 'yt1'), ('val', 'yt2')):
        os.makedirs(k400 / f'videos_{split}' / 'abseiling')
        shutil.copy(osp.join(ssv2['videos'], '10.webm'),
                    k400 / f'videos_{split}' / 'abseiling' / f'{yid}_000000_000010.mp4')
    prepare_kinetics(str(k400), ann_dir=str(ann))
    for name in ('ucf101', 'hmdb51'):
        os.makedirs(tmp_path / 'data' / name / 'videos' / 'Cls')
        shutil.copy(osp.join(ssv2['videos'], '10.webm'),
                    tmp_path / 'data' / name / 'videos' / 'Cls' / 'v_1.avi')
    ucf = tmp_path / 'ucfTrainTestlist'
    _write(str(ucf / 'classInd.txt'), '1 Cls\n')
    _write(str(ucf / 'trainlist01.txt'), 'Cls/v_1.avi 1\n')
    _write(str(ucf / 'testlist01.txt'), 'Cls/v_1.avi\n')
    prepare_ucf101(str(ucf), str(tmp_path / 'data' / 'ucf101' / 'videos'),
                   str(tmp_path / 'data' / 'ucf101'), splits=[1])
    hm = tmp_path / 'hmdb_splits'
    shutil.copy(osp.join(ssv2['videos'], '10.webm'),
                tmp_path / 'data' / 'hmdb51' / 'videos' / 'Cls' / 'v_2.avi')
    _write(str(hm / 'Cls_test_split1.txt'), 'v_1.avi 1\nv_2.avi 2\n')
    prepare_hmdb51(str(hm), str(tmp_path / 'data' / 'hmdb51' / 'videos'),
                   str(tmp_path / 'data' / 'hmdb51'), splits=[1])
    checked = 0
    for cfg_file in ('_base_/ssv2_pretrain_data.py', 'finetune/_base_/ssv2_finetune_data.py',
                     '_base_/k400_pretrain_data.py', 'finetune/_base_/k400_finetune_data.py',
                     'finetune/vit-b_amd-k400-pre_16x224_ucf101.py',
                     'finetune/vit-b_amd-k400-pre_16x224_hmdb51.py'):
        cfg = Config.fromfile(osp.join(CONFIGS, cfg_file))
        for key in ('train_dataloader', 'val_dataloader'):
            if not cfg.get(key):
                continue
            ds = cfg[key]['dataset']
            ann_file = osp.join(root, ds['ann_file'])
            prefix = osp.join(root, ds['data_prefix']['video'])
            assert osp.isfile(ann_file), (cfg_file, key, ds['ann_file'])
            assert check_video_list(ann_file, prefix), (cfg_file, key)
            checked += 1
    assert checked == 10
    # AVA: the names configs/ava/_ava_v2.2_data.py reads
    cfg = Config.fromfile(osp.join(CONFIGS, 'ava', '_ava_v2.2_data.py'))
    from amd_mmaction.data.prepare.ava import ann_names
    names = ann_names('2.2')
    assert osp.basename(cfg.ann_file_train) == names['train']
    assert osp.basename(cfg.exclude_file_val) == names['exclude_val']
    assert osp.basename(cfg.label_file) == names['label_map_eval']
    assert osp.basename(cfg.proposal_file_train) == names['proposals_train']
    assert cfg.data_root == 'data/ava/rawframes' and cfg.anno_root == 'data/ava/annotations'


# ------------------------------------------------------------------ command line

def test_cli_refusals_are_one_line_errors(ssv2, capsys):
    args = ['ssv2', '--ann-dir', ssv2['ann'], '--video-dir', ssv2['videos'], '--out', ssv2['out']]
    assert CLI.main(args) == 0
    out = capsys.readouterr().out
    assert 'written   sthv2_train_list_videos.txt' in out and 'duplicate 1, missing 1' in out
    assert CLI.main(['scan', osp.join(ssv2['out'], 'sthv2_train_list_videos.txt'),
                     '--video-root', ssv2['videos'], '--clip-len', '4', '--workers', '1',
                     '--quiet']) == 0
    assert '3 lines, 3 good, 0 bad' in capsys.readouterr().out
    assert CLI.main(['ssv2', '--ann-dir', ssv2['ann'], '--video-dir', ssv2['videos'], '--out',
                     osp.join(ssv2['videos'], 'lists')]) == 1
    err = capsys.readouterr().err
    assert err.startswith('error: output folder') and 'inside the video folder' in err
    assert CLI.main(['scan', osp.join(ssv2['root'], 'nope.txt'), '--quiet']) == 1
    assert capsys.readouterr().err == (f"error: video list "
                                       f"{osp.join(ssv2['root'], 'nope.txt')!r} does not exist\n")
    # the real entry point: a list that differs is not replaced, no traceback
    os.remove(osp.join(ssv2['videos'], '10.webm'))
    proc = subprocess.run([sys.executable, PREPARE] + args, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONWARNINGS='ignore'), timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert 'Traceback' not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith('error: 1 output file(s) exist with '
                                                          'different content')
    assert _lines(osp.join(ssv2['out'], 'sthv2_train_list_videos.txt'))[0] == '10.webm 0'
