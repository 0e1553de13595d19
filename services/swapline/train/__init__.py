"""Training a face-swap model for one identity pair (DeepFaceLab-style
autoencoder: one shared encoder, one decoder per identity)."""
