"""Stream stages: a consume → process → produce/write → commit loop shared by every stage."""
