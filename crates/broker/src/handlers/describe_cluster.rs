//! DescribeCluster: the live nodes and a live node as controller id, from
//! this node's metadata image.

use eddy_protocol::StrBytes;
use eddy_protocol::messages::{
    DescribeClusterRequest, DescribeClusterResponse,
    describe_cluster_response::DescribeClusterBroker,
};

use super::metadata::reported_controller;
use crate::state::Broker;

pub fn handle(broker: &Broker, _request: DescribeClusterRequest) -> DescribeClusterResponse {
    let image = broker.image();
    DescribeClusterResponse {
        cluster_id: StrBytes::from(image.cluster_id.as_str()),
        controller_id: reported_controller(broker, &image),
        brokers: image
            .live_brokers()
            .map(|registration| DescribeClusterBroker {
                broker_id: registration.id,
                host: StrBytes::from(registration.host.as_str()),
                port: i32::from(registration.port),
                rack: None,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}
