"""What stages take and answer, message ⇄ domain type: detections, face
regions and aligned faces, blend items and patches, model descriptions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from swapline.errors import InvalidInputError
from swapline.media import DEFAULT_MAX_PIXELS
from swapline.protocol import wire
from swapline.protocol.options import face_type, face_type_message
from swapline.stages.align import AlignedCrop, AlignedFace, AlignOptions, FaceType, RegionInput
from swapline.stages.blend import BlendItem
from swapline.stages.detect import Scored
from swapline.stages.encode import FramePatches
from swapline.stages.paste import Patch
from swapline.stages.swap import ModelEntry
from swapline.v1 import blender_pb2, encoder_pb2, swapper_pb2
from swapline.v1 import common_pb2 as pb


def faces_message(boxes: Sequence[Scored]) -> list[pb.Face]:
    """A frame's detections, largest first as found."""
    return [
        pb.Face(box=wire.box_message(box[:4]), score=box[4], face_index=n)
        for n, box in enumerate(boxes)
    ]


def scored_boxes(faces: Sequence[pb.Face]) -> list[Scored]:
    return [(f.box.left, f.box.top, f.box.right, f.box.bottom, f.score) for f in faces]


def aligned_face_message(
    face: AlignedFace,
    ref: pb.FrameRef,
    options: AlignOptions,
    encoding: pb.ImageEncoding,
) -> pb.AlignedFace:
    aligned = face.aligned
    message = pb.AlignedFace(
        frame=ref,
        face_index=face.face_index,
        track_id=face.track_id,
        face_type=face_type_message(options.face_type),
        size=options.size,
        frame_to_crop=wire.affine_message(aligned.frame_to_crop),
        crop_to_frame=wire.affine_message(aligned.crop_to_frame),
        landmarks=wire.landmarks_message(face.landmarks),
        crop_landmarks=wire.landmarks_message(aligned.crop_landmarks),
        box=wire.box_message(face.box),
        score=face.score,
    )
    if aligned.crop is not None:
        message.crop.CopyFrom(wire.image_message(aligned.crop, encoding))
    if aligned.mask is not None:
        message.mask.CopyFrom(wire.image_message(aligned.mask, encoding))
    if face.embedding is not None:
        message.embedding.extend(face.embedding.tolist())
    return message


def region_message(region: RegionInput, image: pb.Image) -> pb.FaceRegion:
    """A face to align, its pixels already made into ``image``."""
    return pb.FaceRegion(
        frame=pb.FrameRef(index=region.frame_index),
        face_index=region.face_index,
        image=image,
        origin=pb.Point(x=region.origin[0], y=region.origin[1]),
        box=wire.box_message(region.box),
        score=region.score,
    )


def region_input(message: pb.FaceRegion, image: np.ndarray) -> RegionInput:
    """A face to align, its pixels already decoded into ``image``."""
    return RegionInput(
        frame_index=message.frame.index,
        face_index=message.face_index,
        image=image,
        origin=wire.point_tuple(message.origin, "origin"),
        box=wire.box_tuple(message.box),
        score=message.score,
    )


def aligned_face(message: pb.AlignedFace, region: RegionInput) -> AlignedFace:
    """The aligned face of ``region`` (landmarks arrive smoothed only)."""
    landmarks = wire.landmarks_array(message.landmarks)
    return AlignedFace(
        frame_index=region.frame_index,
        face_index=region.face_index,
        track_id=message.track_id,
        landmarks=landmarks,
        raw_landmarks=landmarks,
        aligned=AlignedCrop(
            crop=wire.decode_image_message(message.crop) if message.HasField("crop") else None,
            mask=wire.decode_image_message(message.mask) if message.HasField("mask") else None,
            frame_to_crop=wire.affine_array(message.frame_to_crop),
            crop_to_frame=wire.affine_array(message.crop_to_frame),
            crop_landmarks=wire.landmarks_array(message.crop_landmarks),
        ),
        box=region.box,
        score=region.score,
        embedding=np.array(message.embedding) if message.embedding else None,
    )


def blend_item_message(item: BlendItem, encoding: pb.ImageEncoding) -> blender_pb2.BlendItem:
    """One face to blend. The frame's pixels go only when there are some
    (seamless cloning); colour transfer matches the replaced face's crop."""
    roi = (
        pb.Image()
        if item.roi is None
        else wire.image_message(np.ascontiguousarray(item.roi), encoding)
    )
    return blender_pb2.BlendItem(
        region=pb.FaceRegion(
            frame=pb.FrameRef(index=item.frame_index),
            face_index=item.face_index,
            image=roi,
            origin=pb.Point(x=item.origin[0], y=item.origin[1]),
        ),
        region_size=pb.Size(width=item.size[0], height=item.size[1]),
        original_face=(
            wire.image_message(item.original) if item.original is not None else pb.Image()
        ),
        swapped_face=wire.image_message(item.swapped),
        swapped_mask=(
            wire.image_message(item.swapped_mask) if item.swapped_mask is not None else pb.Image()
        ),
        hull_mask=wire.image_message(item.hull_mask) if item.hull_mask is not None else pb.Image(),
        crop_to_frame=wire.affine_message(item.crop_to_frame),
    )


def blend_item(
    message: blender_pb2.BlendItem, what: str, max_pixels: int, seamless_clone: bool
) -> BlendItem:
    """One face to blend, checked: the frame's pixels, or the size of their
    rectangle and the replaced face; a square colour face; grey masks."""
    roi = None
    if message.region.image.width:
        roi = wire.decode_image_message(message.region.image, f"{what}.region.image", max_pixels)
    original = None
    if message.original_face.width:
        original = wire.decode_image_message(
            message.original_face, f"{what}.original_face", max_pixels
        )
    size = (message.region_size.width, message.region_size.height)
    if roi is None and (original is None or min(size) < 1):
        raise InvalidInputError(
            f"{what}: region.image, or region_size and original_face, are required"
        )
    if roi is None and seamless_clone:
        raise InvalidInputError(f"{what}: seamless_clone needs region.image")
    if roi is None and size[0] * size[1] > max_pixels:
        raise InvalidInputError(f"{what}.region_size exceeds max_frame_pixels")
    face = wire.decode_image_message(message.swapped_face, f"{what}.swapped_face", max_pixels)
    if face.ndim != 3 or face.shape[0] != face.shape[1]:
        raise InvalidInputError(f"{what}.swapped_face must be a square colour crop")
    masks = [
        wire.decode_image_message(m, f"{what}.mask", max_pixels) if m.width else None
        for m in (message.swapped_mask, message.hull_mask)
    ]
    if any(m is not None and m.ndim != 2 for m in masks):
        raise InvalidInputError(f"{what}: masks must be GRAY8")
    return BlendItem(
        frame_index=message.region.frame.index,
        face_index=message.region.face_index,
        origin=wire.pixel_origin(message.region.origin, f"{what}.region.origin"),
        size=size,
        original=original,
        swapped=face,
        swapped_mask=masks[0],
        hull_mask=masks[1],
        crop_to_frame=wire.affine_array(message.crop_to_frame, f"{what}.crop_to_frame"),
        roi=roi,
    )


def patch_message(
    patch: Patch, encoding: pb.ImageEncoding, region: pb.FaceRegion | None = None
) -> blender_pb2.Patch:
    """A blended patch; with ``region``, naming the face it was blended for."""
    message = blender_pb2.Patch(
        image=wire.image_message(patch.image, encoding),
        origin=pb.Point(x=patch.origin[0], y=patch.origin[1]),
    )
    if region is not None:
        message.frame.CopyFrom(region.frame)
        message.face_index = region.face_index
    return message


def patch(message: blender_pb2.Patch, max_pixels: int = DEFAULT_MAX_PIXELS) -> Patch:
    return Patch(
        wire.pixel_origin(message.origin, "patch.origin"),
        wire.decode_image_message(message.image, "patch", max_pixels, keep_alpha=True),
    )


def frame_patches_message(
    item: FramePatches, encoding: pb.ImageEncoding
) -> encoder_pb2.FramePatches:
    return encoder_pb2.FramePatches(
        frame=pb.FrameRef(index=item.index),
        patches=[patch_message(p, encoding) for p in item.patches],
    )


def frame_patches(message: encoder_pb2.FramePatches, max_pixels: int) -> FramePatches:
    return FramePatches(message.frame.index, [patch(p, max_pixels) for p in message.patches])


def model_info(entry: ModelEntry, ready: bool) -> swapper_pb2.ModelInfo:
    meta = entry.metadata
    return swapper_pb2.ModelInfo(
        name=entry.name,
        version="1",
        ready=ready,
        resolution=entry.resolution,
        face_type=face_type_message(str(meta.get("face_type"))),
        architecture=str(meta.get("architecture", "")),
        identities=[
            swapper_pb2.Identity(
                role=str(i.get("role", "")),
                name=str(i.get("name", "")),
                consent_reference=str(i.get("consent_reference", "")),
                embedding=[float(v) for v in i.get("embedding") or []],
            )
            for i in meta.get("identities", [])
        ],
        training_steps=int(meta.get("training_steps", 0)),
        final_loss=float(meta.get("final_loss", 0.0)),
        created=str(meta.get("exported", "")),
        precision=str(meta.get("precision", "")),
        extra={"trained_on": str(meta.get("trained_on", ""))},
    )


def model_entry(info: swapper_pb2.ModelInfo) -> ModelEntry:
    """What a pipeline needs of a model served elsewhere (no local path)."""
    # A model that names no face type was trained on whole faces.
    kind = face_type(info.face_type, FaceType.WHOLE)
    identities = [
        {
            "role": i.role,
            "name": i.name,
            "consent_reference": i.consent_reference,
            "embedding": list(i.embedding),
        }
        for i in info.identities
    ]
    return ModelEntry(
        info.name,
        Path(info.name),
        {"resolution": info.resolution, "face_type": kind.value, "identities": identities},
    )
