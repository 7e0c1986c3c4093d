"""The model zoo: the app's other models (OpenFace 3.0 MTL and STAR), exported and measured."""
