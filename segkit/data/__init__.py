"""Datasets on disk: preparing ADE20K and VOC aug from their archives
(:mod:`.prepare`), checking a config's data the way training reads it
(:mod:`.validate`), and class weights from the train split's pixel counts
(:mod:`.class_weights`); and the built-in demo dataset (:mod:`.demo`)."""
