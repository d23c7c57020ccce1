"""Model factories to copy: ``workbench report hessian --model examples.flax_cnn:make --data digits``."""
