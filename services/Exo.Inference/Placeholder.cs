namespace Exo.Inference;
