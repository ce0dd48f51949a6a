"""Datasets on disk: preparing ADE20K and VOC aug from their archives (:mod:`.prepare`),
checking a config's data the way training reads it (:mod:`.validate`), class weights
from the train split (:mod:`.class_weights`) and the demo dataset (:mod:`.shapes`)."""
